#include "fs/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"

namespace pollux::fs {
namespace {

// Restates an operation's error so that it names the file's path: errno
// statuses are rebuilt (same code and errno payload), others get a prefix.
absl::Status with_path(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  const int err = errno_of(s);
  if (err != 0) return errno_status(err, what);
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status closed_status(const std::string& path, absl::string_view op) {
  return absl::FailedPreconditionError(absl::StrCat(op, " ", path, ": the file is closed"));
}

Metadata to_metadata(const struct statx& st) {
  Metadata m;
  m.size = st.stx_size;
  m.mode = st.stx_mode;
  m.is_file = S_ISREG(st.stx_mode);
  m.is_dir = S_ISDIR(st.stx_mode);
  m.is_symlink = S_ISLNK(st.stx_mode);
  m.mtime = absl::FromUnixSeconds(st.stx_mtime.tv_sec) + absl::Nanoseconds(st.stx_mtime.tv_nsec);
  return m;
}

}  // namespace

absl::StatusOr<int> OpenOptions::flags(const std::string& path) const {
  const bool writes = write_ || append_;
  if (!read_ && !writes) {
    return absl::InvalidArgumentError(
        absl::StrCat("open ", path, ": options need read, write or append"));
  }
  if (truncate_ && !write_) {
    return absl::InvalidArgumentError(
        absl::StrCat("open ", path, ": truncate needs write (and not only append)"));
  }
  if ((create_ || create_new_) && !writes) {
    return absl::InvalidArgumentError(
        absl::StrCat("open ", path, ": create needs write or append"));
  }
  int f = read_ && writes ? O_RDWR : writes ? O_WRONLY : O_RDONLY;
  if (append_) f |= O_APPEND;
  if (create_new_) {
    f |= O_CREAT | O_EXCL;
  } else if (create_) {
    f |= O_CREAT;
  }
  if (truncate_) f |= O_TRUNC;
  return f | O_CLOEXEC;
}

Task<absl::StatusOr<File>> File::open(std::string path, OpenOptions options) {
  absl::StatusOr<int> flags = options.flags(path);
  if (!flags.ok()) co_return flags.status();
  absl::StatusOr<OwnedFd> fd = co_await reactor::openat(AT_FDCWD, path, *flags, options.mode());
  if (!fd.ok()) co_return with_path(fd.status(), absl::StrCat("open ", path));
  co_return File(std::move(*fd), std::move(path));
}

Task<absl::StatusOr<File>> File::open(std::string path) {
  co_return co_await open(std::move(path), OpenOptions().read(true));
}

Task<absl::StatusOr<File>> File::create(std::string path) {
  co_return co_await open(std::move(path), OpenOptions().write(true).create(true).truncate(true));
}

Task<IoResult> File::read_at(std::vector<char> buf, uint64_t offset) const {
  if (!fd_.valid()) co_return IoResult{closed_status(path_, "read_at"), std::move(buf)};
  IoResult r = co_await reactor::read(fd_.get(), std::move(buf), offset);
  if (!r.n.ok()) r.n = with_path(r.n.status(), absl::StrCat("read ", path_, " at offset ", offset));
  co_return r;
}

Task<IoResult> File::write_at(std::vector<char> buf, uint64_t offset) const {
  if (!fd_.valid()) co_return IoResult{closed_status(path_, "write_at"), std::move(buf)};
  IoResult r = co_await reactor::write(fd_.get(), std::move(buf), offset);
  if (!r.n.ok()) {
    r.n = with_path(r.n.status(), absl::StrCat("write ", path_, " at offset ", offset));
  }
  co_return r;
}

Task<IoResult> File::write_all_at(std::vector<char> buf, uint64_t offset) const {
  if (!fd_.valid()) co_return IoResult{closed_status(path_, "write_all_at"), std::move(buf)};
  size_t done = 0;
  while (done < buf.size()) {
    const uint64_t at = offset + done;
    IoResult r = co_await reactor::write_from(fd_.get(), std::move(buf), done, at);
    buf = std::move(r.buf);
    if (!r.n.ok()) {
      const int err = errno_of(r.n.status());
      if (err == EINTR) continue;
      co_return IoResult{
          with_path(r.n.status(), absl::StrCat("write ", path_, " at offset ", at, " (after ", done,
                                               " of ", buf.size(), " bytes)")),
          std::move(buf)};
    }
    if (*r.n == 0) {
      co_return IoResult{absl::DataLossError(absl::StrCat("write ", path_, " at offset ", at,
                                                          ": wrote 0 bytes (after ", done, " of ",
                                                          buf.size(), " bytes)")),
                         std::move(buf)};
    }
    done += *r.n;
  }
  co_return IoResult{done, std::move(buf)};
}

Task<absl::StatusOr<std::vector<char>>> File::read_to_end() const {
  if (!fd_.valid()) co_return closed_status(path_, "read_to_end");
  // The size is only a hint (files grow, /proc files report 0): read until
  // a read returns 0, growing the buffer as it fills.
  size_t capacity = 8192;
  {
    absl::StatusOr<struct statx> st =
        co_await reactor::statx(fd_.get(), "", AT_EMPTY_PATH, STATX_SIZE);
    if (st.ok() && (st->stx_mask & STATX_SIZE)) {
      capacity = std::max<size_t>(capacity, static_cast<size_t>(st->stx_size) + 1);
    }
  }
  std::vector<char> buf(capacity);
  size_t len = 0;
  for (;;) {
    if (len == buf.size()) buf.resize(buf.size() * 2);
    IoResult r = co_await reactor::read_into(fd_.get(), std::move(buf), len, len);
    buf = std::move(r.buf);
    if (!r.n.ok()) {
      if (errno_of(r.n.status()) == EINTR) continue;
      co_return with_path(r.n.status(), absl::StrCat("read ", path_, " at offset ", len));
    }
    if (*r.n == 0) break;
    len += *r.n;
  }
  buf.resize(len);
  co_return buf;
}

Task<absl::Status> File::fsync(bool datasync) const {
  if (!fd_.valid()) co_return closed_status(path_, "fsync");
  absl::Status s = co_await reactor::fsync(fd_.get(), datasync);
  co_return with_path(s, absl::StrCat(datasync ? "fdatasync " : "fsync ", path_));
}

Task<absl::StatusOr<Metadata>> File::metadata() const {
  if (!fd_.valid()) co_return closed_status(path_, "metadata");
  absl::StatusOr<struct statx> st =
      co_await reactor::statx(fd_.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS);
  if (!st.ok()) co_return with_path(st.status(), absl::StrCat("statx ", path_));
  co_return to_metadata(*st);
}

Task<absl::Status> File::close() {
  if (!fd_.valid()) co_return closed_status(path_, "close");
  // The op owns the fd from here: the File is closed whatever happens next.
  const int raw = fd_.get();
  absl::Status s = co_await reactor::close(std::move(fd_));
  // An op that could not start (no I/O backend on this thread: the only
  // failure without an errno) did not close the fd: close it here.
  if (!s.ok() && errno_of(s) == 0) ::close(raw);
  co_return with_path(s, absl::StrCat("close ", path_));
}

Task<absl::StatusOr<Metadata>> metadata(std::string path) {
  absl::StatusOr<struct statx> st = co_await reactor::statx(AT_FDCWD, path, 0, STATX_BASIC_STATS);
  if (!st.ok()) co_return with_path(st.status(), absl::StrCat("statx ", path));
  co_return to_metadata(*st);
}

}  // namespace pollux::fs
