// File: an open regular file (or directory, FIFO) driven by the reactor's
// operation futures, with positional I/O on owned buffers.
//
//   absl::StatusOr<fs::File> f = co_await fs::File::create("/tmp/out");
//   if (!f.ok()) co_return f.status();
//   reactor::IoResult w = co_await f->write_all_at(std::move(data), 0);
//   absl::Status s = co_await f->fsync();
//   s.Update(co_await f->close());
//
// Like monoio/tokio-uring there is no cursor: every read and write names its
// offset, and data buffers move into the operation and come back in the
// IoResult (the kernel may touch them until the final completion). Errors
// are absl::Status values whose message names the path (ENOENT is kNotFound,
// EEXIST kAlreadyExists, ...; errno_of(status) recovers the errno).
//
// Methods that are coroutines (Task<...>) refer to `*this`: the File must
// outlive the Task, and must not be moved while one of its Tasks runs.
//
// Using a closed (or moved-from) File is FailedPrecondition, naming the path.
//
// Thread-safety: a File is a move-only value used from one runtime thread at
// a time; its futures run on the thread whose I/O backend they started
// on. Outside a runtime with I/O enabled every operation fails with
// FailedPrecondition.
#ifndef POLLUX_FS_FILE_H_
#define POLLUX_FS_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "future/task.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"

namespace pollux::fs {

using reactor::IoResult;

// How File::open opens a file, as in Rust's std::fs::OpenOptions:
//
//   fs::OpenOptions().read(true).write(true).create(true).mode(0600)
//
// Rules (checked by File::open, InvalidArgument otherwise): at least one of
// read, write, append; truncate needs write; create needs write or append.
// append implies write. Files are always opened O_CLOEXEC.
class OpenOptions {
 public:
  OpenOptions() = default;

  OpenOptions& read(bool v) {
    read_ = v;
    return *this;
  }
  OpenOptions& write(bool v) {
    write_ = v;
    return *this;
  }
  // Writes go to the end of the file whatever offset they name (O_APPEND).
  OpenOptions& append(bool v) {
    append_ = v;
    return *this;
  }
  // Creates the file if it does not exist (O_CREAT), with mode() & ~umask.
  OpenOptions& create(bool v) {
    create_ = v;
    return *this;
  }
  // Fails with kAlreadyExists if the file exists (O_CREAT|O_EXCL).
  OpenOptions& create_new(bool v) {
    create_new_ = v;
    return *this;
  }
  // Cuts an existing file to length 0 (O_TRUNC).
  OpenOptions& truncate(bool v) {
    truncate_ = v;
    return *this;
  }
  // Permission bits for a created file; default 0666 (before the umask).
  OpenOptions& mode(mode_t m) {
    mode_ = m;
    return *this;
  }

  // The open(2) flags, or InvalidArgument for a combination that makes no
  // sense (naming `path`).
  [[nodiscard]] absl::StatusOr<int> flags(const std::string& path) const;
  [[nodiscard]] mode_t mode() const { return mode_; }

 private:
  bool read_ = false;
  bool write_ = false;
  bool append_ = false;
  bool create_ = false;
  bool create_new_ = false;
  bool truncate_ = false;
  mode_t mode_ = 0666;
};

// What statx reports about a file.
struct Metadata {
  uint64_t size = 0;
  uint32_t mode = 0;  // st_mode: type and permission bits
  bool is_file = false;
  bool is_dir = false;
  bool is_symlink = false;
  absl::Time mtime;
};

// An open file with positional I/O on owned buffers (see above); move-only, one
// thread at a time.
class File {
 public:
  // Opens `path` with `options`.
  // Output: the File, or an error naming the path (kNotFound when it does
  // not exist, kPermissionDenied, kAlreadyExists for create_new, ...,
  // InvalidArgument for bad options).
  // Cancellation (both backends): dropping the open may still open (or
  // create) the file; the fd that arrives is closed by the backend, so it
  // never leaks. A file created by O_CREAT stays. On epoll the open runs on
  // the blocking pool: one not yet started when dropped never runs.
  [[nodiscard]] static Task<absl::StatusOr<File>> open(std::string path, OpenOptions options);
  // Opens `path` read-only. Cancellation: as open().
  [[nodiscard]] static Task<absl::StatusOr<File>> open(std::string path);
  // Opens `path` for writing, creating it (0666 & ~umask) or truncating it.
  // Cancellation: as open(); an existing file may already be truncated.
  [[nodiscard]] static Task<absl::StatusOr<File>> create(std::string path);

  // Adopts an open fd; `path` is used in error messages only.
  File(OwnedFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  // Closes the fd synchronously (close(2)) if close() was not awaited.
  ~File() = default;

  // Reads up to buf.size() bytes at `offset` into `buf`.
  // Output: IoResult; n == 0 means `offset` is at or past the end of file.
  // The buffer always comes back.
  // Cancellation (both backends): the read may still happen (on epoll, on
  // the blocking pool); the data it read is lost.
  [[nodiscard]] Task<IoResult> read_at(std::vector<char> buf, uint64_t offset) const;
  // Writes buf at `offset` once. Output: IoResult; a short write (n <
  // buf.size()) is possible, see write_all_at.
  // Cancellation (both backends): the write may still happen, wholly or in
  // part (on epoll, on the blocking pool).
  [[nodiscard]] Task<IoResult> write_at(std::vector<char> buf, uint64_t offset) const;
  // Writes all of buf at `offset`, looping over short writes. Output:
  // IoResult with n == buf.size() on success; on error n is the error (the
  // bytes before it may have been written) and the buffer comes back. A
  // write that makes no progress is kDataLoss ("wrote 0 bytes").
  // Cancellation (both backends): any prefix of buf may have been written.
  [[nodiscard]] Task<IoResult> write_all_at(std::vector<char> buf, uint64_t offset) const;
  // Reads the whole file from offset 0 to its end (which may differ from the
  // size statx reports, e.g. for /proc files).
  // Cancellation: nothing to undo; the data read so far is dropped.
  [[nodiscard]] Task<absl::StatusOr<std::vector<char>>> read_to_end() const;
  // Flushes data and metadata to the device (fsync(2)); `datasync`: only
  // what is needed to read the data back (fdatasync(2)).
  // Cancellation (both backends): the flush may still happen (on epoll, on
  // the blocking pool).
  [[nodiscard]] Task<absl::Status> fsync(bool datasync = false) const;
  // statx of the open file.
  // Cancellation: nothing to undo.
  [[nodiscard]] Task<absl::StatusOr<Metadata>> metadata() const;
  // Closes the file through the backend. The File is closed (invalid) from the
  // Task's first poll on, whatever the outcome; an error (e.g. EIO reported
  // late by NFS) names the path. A Task dropped before its first poll leaves
  // the File open.
  // Cancellation: the fd is closed either way (it is never leaked or left
  // open; io_uring still carries out a dropped close, epoll closes in the
  // first poll).
  [[nodiscard]] Task<absl::Status> close();

  // The raw fd (-1 once closed); still owned by the File.
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  OwnedFd fd_;
  std::string path_;
};

// statx of `path` (following symlinks). Output: Metadata or an error naming
// the path (kNotFound when it does not exist).
// Cancellation: nothing to undo.
[[nodiscard]] Task<absl::StatusOr<Metadata>> metadata(std::string path);

}  // namespace pollux::fs

#endif  // POLLUX_FS_FILE_H_
