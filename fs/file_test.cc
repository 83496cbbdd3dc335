// Tests for fs::File through Runtime::block_on, in a fresh temporary
// directory per test: 4 MiB written and read back byte-exact at offsets,
// read_to_end, a missing file (kNotFound naming the path), create/truncate/
// create_new semantics and bad options, metadata of files and directories,
// fsync, close, concurrent reads, use without an io driver, a dropped
// pending open leaking no fd, and write_all_at
// looping over short writes (a FIFO whose reader drains slowly). The
// runtime is the flavour the BUILD target names (tests/flavour.h).
#include "fs/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "future/join.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/errno_status.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"

namespace pollux {
namespace {

using fs::File;
using fs::Metadata;
using fs::OpenOptions;
using reactor::IoResult;

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

std::vector<char> pattern(size_t n, uint32_t seed) {
  std::vector<char> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    v[i] = static_cast<char>(x >> 24);
  }
  return v;
}

std::string slurp(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<missing>";
  char b[4096];
  ssize_t n;
  while ((n = ::read(fd, b, sizeof b)) > 0) out.append(b, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void spit(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  POLLUX_CHECK(fd >= 0, "open for spit");
  POLLUX_CHECK(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()),
               "write for spit");
  ::close(fd);
}

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/pollux_fs_XXXXXX");
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    if (rt_.io_backend() != nullptr) {
      EXPECT_EQ(pollux::testing::live_ops(rt_), 0u) << "an op slot is still live after the test";
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Opens `p` with `o`, failing the test on error.
  File must_open(const std::string& p, OpenOptions o) {
    absl::StatusOr<File> f = rt_.block_on(File::open(p, o));
    POLLUX_CHECK(f.ok(), std::string(f.status().message()).c_str());
    return std::move(*f);
  }

  std::string dir_;
  Runtime rt_ = make_runtime();
  testing::Watchdog dog_{std::chrono::seconds(60), "fs file test"};
};

TEST_F(FileTest, WritesAndReadsBack4MiBByteExactAtOffsets) {
  constexpr size_t kSize = 4 << 20;
  const std::vector<char> data = pattern(kSize, 1);
  File f = must_open(path("big"), OpenOptions().read(true).write(true).create(true));

  IoResult w = rt_.block_on(f.write_all_at(data, 0));
  ASSERT_TRUE(w.n.ok()) << w.n.status();
  EXPECT_EQ(*w.n, kSize);
  EXPECT_EQ(w.buf, data) << "the written buffer comes back unchanged";

  // Overwrite a patch in the middle at an unaligned offset.
  constexpr uint64_t kPatchAt = (1 << 20) + 12345;
  const std::vector<char> patch = pattern(70000, 2);
  IoResult pw = rt_.block_on(f.write_all_at(patch, kPatchAt));
  ASSERT_TRUE(pw.n.ok()) << pw.n.status();
  std::vector<char> expect = data;
  std::copy(patch.begin(), patch.end(), expect.begin() + kPatchAt);

  // Read back in uneven chunks at increasing offsets.
  std::vector<char> got;
  got.reserve(kSize);
  rt_.block_on([](const File& f, std::vector<char>& got) -> Task<void> {
    uint64_t off = 0;
    size_t chunk = 1000;
    for (;;) {
      IoResult r = co_await f.read_at(std::vector<char>(chunk), off);
      EXPECT_TRUE(r.n.ok()) << r.n.status();
      EXPECT_EQ(r.buf.size(), chunk) << "the whole buffer comes back";
      if (!r.n.ok() || *r.n == 0) co_return;
      got.insert(got.end(), r.buf.begin(), r.buf.begin() + static_cast<ptrdiff_t>(*r.n));
      off += *r.n;
      chunk = chunk * 3 % 300007 + 4096;
    }
  }(f, got));
  ASSERT_EQ(got.size(), kSize);
  EXPECT_TRUE(got == expect) << "data read back differs from data written";
  // And independently of our reader.
  const std::string on_disk = slurp(path("big"));
  EXPECT_TRUE(on_disk == std::string(expect.begin(), expect.end()));

  // A read at exactly one offset returns exactly those bytes.
  IoResult r = rt_.block_on(f.read_at(std::vector<char>(16), kPatchAt));
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  ASSERT_EQ(*r.n, 16u);
  EXPECT_TRUE(std::equal(r.buf.begin(), r.buf.end(), patch.begin()));
  // Past the end: 0 bytes.
  IoResult eof = rt_.block_on(f.read_at(std::vector<char>(16), kSize + 10));
  ASSERT_TRUE(eof.n.ok()) << eof.n.status();
  EXPECT_EQ(*eof.n, 0u);
  EXPECT_TRUE(rt_.block_on(f.close()).ok());
}

TEST_F(FileTest, ReadToEndReturnsTheWholeFile) {
  const std::vector<char> data = pattern(300001, 3);
  spit(path("a"), std::string(data.begin(), data.end()));
  spit(path("empty"), "");
  File f = must_open(path("a"), OpenOptions().read(true));
  absl::StatusOr<std::vector<char>> all = rt_.block_on(f.read_to_end());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), data.size());
  EXPECT_TRUE(*all == data);

  File e = must_open(path("empty"), OpenOptions().read(true));
  absl::StatusOr<std::vector<char>> none = rt_.block_on(e.read_to_end());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  // A file whose size statx reports as 0 but which has content.
  absl::StatusOr<File> proc = rt_.block_on(File::open("/proc/self/status"));
  ASSERT_TRUE(proc.ok()) << proc.status();
  absl::StatusOr<std::vector<char>> st = rt_.block_on(proc->read_to_end());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_NE(std::string(st->begin(), st->end()).find("Pid:"), std::string::npos);
}

TEST_F(FileTest, OpeningAMissingFileIsNotFoundNamingThePath) {
  const std::string p = path("no/such/file");
  absl::StatusOr<File> f = rt_.block_on(File::open(p));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound) << f.status();
  EXPECT_EQ(errno_of(f.status()), ENOENT);
  EXPECT_NE(f.status().message().find(p), absl::string_view::npos) << f.status();

  absl::StatusOr<Metadata> m = rt_.block_on(fs::metadata(p));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
  EXPECT_NE(m.status().message().find(p), absl::string_view::npos) << m.status();
}

TEST_F(FileTest, CreateTruncatesAndOptionsMeanWhatTheySay) {
  const std::string p = path("t");
  spit(p, "hello, world");

  // create(true) alone keeps the content.
  {
    File f = must_open(p, OpenOptions().write(true).create(true));
    IoResult w = rt_.block_on(f.write_at(std::vector<char>{'J'}, 0));
    ASSERT_TRUE(w.n.ok()) << w.n.status();
  }
  EXPECT_EQ(slurp(p), "Jello, world");

  // File::create truncates an existing file.
  absl::StatusOr<File> c = rt_.block_on(File::create(p));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(slurp(p), "");
  IoResult w = rt_.block_on(c->write_all_at(std::vector<char>{'a', 'b', 'c'}, 0));
  ASSERT_TRUE(w.n.ok()) << w.n.status();
  EXPECT_EQ(slurp(p), "abc");
  // ... and it is write-only.
  IoResult r = rt_.block_on(c->read_at(std::vector<char>(4), 0));
  EXPECT_FALSE(r.n.ok());
  EXPECT_EQ(errno_of(r.n.status()), EBADF) << r.n.status();
  EXPECT_NE(r.n.status().message().find(p), absl::string_view::npos) << r.n.status();

  // File::create makes a new file too, with mode & ~umask.
  const std::string q = path("new");
  ASSERT_TRUE(rt_.block_on(File::create(q)).ok());
  struct stat st {};
  ASSERT_EQ(::stat(q.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));

  // A read-only open does not create.
  absl::StatusOr<File> ro = rt_.block_on(File::open(path("absent")));
  EXPECT_EQ(ro.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(::access(path("absent").c_str(), F_OK), 0);

  // create_new on an existing file.
  absl::StatusOr<File> cn = rt_.block_on(File::open(p, OpenOptions().write(true).create_new(true)));
  ASSERT_FALSE(cn.ok());
  EXPECT_EQ(cn.status().code(), absl::StatusCode::kAlreadyExists) << cn.status();
  EXPECT_NE(cn.status().message().find(p), absl::string_view::npos);

  // append writes at the end whatever the offset.
  {
    File a = must_open(p, OpenOptions().append(true));
    ASSERT_TRUE(rt_.block_on(a.write_all_at(std::vector<char>{'!'}, 0)).n.ok());
  }
  EXPECT_EQ(slurp(p), "abc!");

  // Options that make no sense.
  for (OpenOptions bad : {OpenOptions(), OpenOptions().read(true).truncate(true),
                          OpenOptions().read(true).create(true)}) {
    absl::StatusOr<File> b = rt_.block_on(File::open(p, bad));
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
  }
  EXPECT_EQ(slurp(p), "abc!") << "a refused truncate did not truncate";
}

TEST_F(FileTest, MetadataReportsSizeTypeAndMtime) {
  const absl::Time before = absl::Now() - absl::Seconds(2);
  File f = must_open(path("m"), OpenOptions().read(true).write(true).create(true).mode(0640));
  ASSERT_TRUE(rt_.block_on(f.write_all_at(pattern(12345, 4), 0)).n.ok());
  absl::StatusOr<Metadata> m = rt_.block_on(f.metadata());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size, 12345u);
  EXPECT_TRUE(m->is_file);
  EXPECT_FALSE(m->is_dir);
  EXPECT_TRUE(S_ISREG(m->mode));
  EXPECT_EQ(m->mode & 0077 & ~0640u, 0u);
  EXPECT_GE(m->mtime, before);
  EXPECT_LE(m->mtime, absl::Now() + absl::Seconds(2));

  // Growing the file shows in the next statx.
  ASSERT_TRUE(rt_.block_on(f.write_all_at(std::vector<char>(10, 'x'), 20000)).n.ok());
  absl::StatusOr<Metadata> m2 = rt_.block_on(f.metadata());
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(m2->size, 20010u);

  // Directories, by path and by an open fd.
  absl::StatusOr<Metadata> d = rt_.block_on(fs::metadata(dir_));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->is_dir);
  EXPECT_FALSE(d->is_file);
  File df = must_open(dir_, OpenOptions().read(true));
  absl::StatusOr<Metadata> dm = rt_.block_on(df.metadata());
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_TRUE(dm->is_dir);
  EXPECT_FALSE(dm->is_file);
  absl::StatusOr<Metadata> pm = rt_.block_on(fs::metadata(path("m")));
  ASSERT_TRUE(pm.ok()) << pm.status();
  EXPECT_EQ(pm->size, 20010u);
  EXPECT_TRUE(pm->is_file);
}

TEST_F(FileTest, FsyncAndCloseSucceedAndAClosedFileSaysSo) {
  File f = must_open(path("s"), OpenOptions().write(true).create(true));
  ASSERT_TRUE(rt_.block_on(f.write_all_at(pattern(100000, 5), 0)).n.ok());
  EXPECT_TRUE(rt_.block_on(f.fsync()).ok());
  EXPECT_TRUE(rt_.block_on(f.fsync(/*datasync=*/true)).ok());
  const int fd = f.fd();
  absl::Status c = rt_.block_on(f.close());
  EXPECT_TRUE(c.ok()) << c;
  EXPECT_FALSE(f.is_open());
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "close() closed the fd";
  absl::Status again = rt_.block_on(f.fsync());
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_NE(again.message().find(path("s")), absl::string_view::npos) << again;
  IoResult r = rt_.block_on(f.read_at(std::vector<char>(8), 0));
  EXPECT_EQ(r.n.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.buf.size(), 8u);
  EXPECT_EQ(slurp(path("s")).size(), 100000u);

  // fsync of an fd that cannot be synced is an error naming the path.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  File pipe_file(OwnedFd(p[0]), "the-pipe");
  absl::Status ps = rt_.block_on(pipe_file.fsync());
  EXPECT_FALSE(ps.ok());
  EXPECT_NE(ps.message().find("the-pipe"), absl::string_view::npos) << ps;
}

TEST_F(FileTest, TheDestructorClosesTheFd) {
  int fd = -1;
  {
    File f = must_open(path("d"), OpenOptions().write(true).create(true));
    fd = f.fd();
    ASSERT_GE(::fcntl(fd, F_GETFD), 0);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << "opened with O_CLOEXEC";
  }
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST_F(FileTest, ConcurrentReadsAtDifferentOffsets) {
  const std::vector<char> data = pattern(1 << 20, 8);
  spit(path("c"), std::string(data.begin(), data.end()));
  File f = must_open(path("c"), OpenOptions().read(true));
  auto [a, b, c] = rt_.block_on(join(f.read_at(std::vector<char>(4096), 0),
                                     f.read_at(std::vector<char>(4096), 500000),
                                     f.read_at(std::vector<char>(4096), (1 << 20) - 100)));
  ASSERT_TRUE(a.n.ok() && b.n.ok() && c.n.ok());
  EXPECT_EQ(*a.n, 4096u);
  EXPECT_EQ(*b.n, 4096u);
  EXPECT_EQ(*c.n, 100u) << "a read near the end is short";
  EXPECT_TRUE(std::equal(a.buf.begin(), a.buf.end(), data.begin()));
  EXPECT_TRUE(std::equal(b.buf.begin(), b.buf.end(), data.begin() + 500000));
  EXPECT_TRUE(std::equal(c.buf.begin(), c.buf.begin() + 100, data.end() - 100));
}

TEST(FileNoIoTest, WithoutAnIoDriverOperationsFailCleanly) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/pollux_fs_XXXXXX");
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string p = tmpl + "/f";
  spit(p, "data");
  const int before = testing::open_fd_count();
  {
    absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_time().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    absl::StatusOr<File> f = rt->block_on(File::open(p));
    EXPECT_EQ(f.status().code(), absl::StatusCode::kFailedPrecondition) << f.status();
    EXPECT_NE(f.status().message().find(p), absl::string_view::npos) << f.status();
    // An adopted fd: reads fail with the buffer back, close still closes.
    File g(OwnedFd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)), p);
    ASSERT_TRUE(g.is_open());
    IoResult r = rt->block_on(g.read_at(std::vector<char>(4), 0));
    EXPECT_EQ(r.n.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(r.buf.size(), 4u);
    const int fd = g.fd();
    EXPECT_EQ(rt->block_on(g.close()).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "close() without a driver still closes the fd";
  }
  EXPECT_EQ(testing::open_fd_count(), before);
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}

TEST(FileDropTest, DroppedPendingOpensLeakNoFd) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/pollux_fs_XXXXXX");
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  const std::string existing = dir + "/existing";
  spit(existing, "x");
  constexpr int kRounds = 256;
  int dropped = 0;
  const int before = testing::open_fd_count();
  ASSERT_GE(before, 0);
  {
    Runtime rt = make_runtime();
    for (int i = 0; i < kRounds; ++i) {
      // Even rounds: a read-only open of a cached path, which the kernel
      // completes inline when the SQE is submitted, i.e. after the future is
      // dropped (the other branch is ready at once, so the SQE is only
      // queued): its fd arrives for a dropped op every time. Odd rounds: a
      // create (run by io-wq) dropped one tick after submission; it may be
      // cancelled, complete after the drop, or win the race.
      const int delay = i % 2;
      Task<absl::StatusOr<File>> open =
          delay == 0 ? File::open(existing) : File::create(absl::StrCat(dir, "/f", i));
      auto later = poll_fn([n = delay](Context& cx) mutable -> Poll<int> {
        if (n-- > 0) {
          cx.waker().wake_by_ref();
          return Pending{};
        }
        return Ready<int>(7);
      });
      auto r = rt.block_on(select(std::move(open), std::move(later)));
      if (delay == 0) {
        EXPECT_EQ(r.index, 1u) << "an open cannot finish before it is submitted";
      }
      if (r.index == 1) ++dropped;
    }
    // Let the kernel finish whatever it started.
    for (int i = 0; i < 10; ++i) (void)rt.block_on(reactor::nop());
  }
  EXPECT_GE(dropped, kRounds / 2);
  EXPECT_EQ(testing::open_fd_count(), before) << "a dropped open leaked its fd";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_F(FileTest, WriteAllAtLoopsOverShortWrites) {
  // A FIFO whose reader drains slowly: one write to it stops at the pipe's
  // capacity (a short write), so writing a large buffer needs many writes.
  const std::string p = path("fifo");
  ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
  File f = must_open(p, OpenOptions().read(true).write(true));
  constexpr size_t kSize = 8 << 20;
  const std::vector<char> data = pattern(kSize, 6);

  // Precondition: a single write_at is short here.
  IoResult one = rt_.block_on(f.write_at(pattern(1 << 20, 7), 0));
  ASSERT_TRUE(one.n.ok()) << one.n.status();
  ASSERT_LT(*one.n, size_t{1} << 20) << "expected a short write into a FIFO";
  const size_t first = *one.n;

  std::string got;
  std::thread reader([&] {
    int rfd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    std::vector<char> b(1 << 16);
    size_t want = first + kSize;
    while (got.size() < want) {
      ssize_t n = ::read(rfd, b.data(), b.size());
      if (n <= 0) break;
      got.append(b.data(), static_cast<size_t>(n));
      if (got.size() < (1 << 20)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::close(rfd);
  });
  IoResult all = rt_.block_on(f.write_all_at(data, 0));
  // The only writer goes away: the reader sees end of file after the data.
  EXPECT_TRUE(rt_.block_on(f.close()).ok());
  reader.join();
  ASSERT_TRUE(all.n.ok()) << all.n.status();
  EXPECT_EQ(*all.n, kSize);
  EXPECT_EQ(all.buf.size(), kSize);
  ASSERT_EQ(got.size(), first + kSize);
  EXPECT_TRUE(got.compare(first, kSize, data.data(), kSize) == 0) << "bytes out of order or lost";
}

}  // namespace
}  // namespace pollux
