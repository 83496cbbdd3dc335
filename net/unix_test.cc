// Tests for UnixListener/UnixStream (unix.h): echo over a filesystem path
// and an abstract name, half-close, split halves, connect to a missing path
// and to a path nobody listens on, bind to a path in use, bad paths, and the
// open fd count back to its start after each test's runtime is destroyed.
// The runtime is the flavour the BUILD target names (tests/flavour.h).
#include "net/unix.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "executor/join_handle.h"
#include "future/join.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/errno_status.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"

namespace pollux::net {
namespace {

using reactor::IoResult;

std::vector<char> bytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }

// In /tmp: Bazel's TEST_TMPDIR is longer than sun_path allows.
std::string temp_path(const std::string& name) {
  return absl::StrCat("/tmp/pollux-net-", name, ".", ::getpid(), ".sock");
}

class UnixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseline_ = pollux::testing::open_fd_count();
    absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_.emplace(std::move(*rt));
  }
  void TearDown() override {
    EXPECT_EQ(pollux::testing::live_ops(*rt_), 0u);
    rt_.reset();
    EXPECT_EQ(pollux::testing::open_fd_count(), baseline_) << "an fd leaked";
  }
  Runtime& rt() { return *rt_; }

  // Echo of `size` bytes through a listener at `path`, written by one task
  // (write half) and read back by another (read half).
  void echo(const std::string& path, size_t size) {
    absl::StatusOr<UnixListener> l = UnixListener::bind(path);
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_EQ(l->path(), path);
    std::vector<char> data(size);
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 131 + 7);
    std::vector<char> got;
    rt().block_on([&]() -> Task<void> {
      JoinHandle<void> server = pollux::spawn([&]() -> Task<void> {
        absl::StatusOr<UnixStream> s = co_await l->accept();
        if (!s.ok()) {
          ADD_FAILURE() << s.status();
          co_return;
        }
        for (int i = 0; i < 100000; ++i) {
          IoResult r = co_await s->read(std::vector<char>(32 * 1024));
          if (!r.n.ok() || *r.n == 0) break;
          r.buf.resize(*r.n);
          WriteAllResult w = co_await s->write_all(std::move(r.buf));
          if (!w.status.ok()) break;
        }
        EXPECT_TRUE(s->shutdown_write().ok());
      });
      absl::StatusOr<UnixStream> c = co_await UnixStream::connect(path);
      if (!c.ok()) {
        ADD_FAILURE() << c.status();
        co_return;
      }
      EXPECT_EQ(c->path(), path);
      auto [rd, wr] = std::move(*c).split();
      JoinHandle<void> writer = pollux::spawn([](WriteHalf w, std::vector<char> d) -> Task<void> {
        WriteAllResult r = co_await w.write_all(std::move(d));
        EXPECT_TRUE(r.status.ok()) << r.status;
        EXPECT_TRUE(w.shutdown_write().ok());
      }(std::move(wr), data));
      for (int i = 0; i < 100000; ++i) {
        IoResult r = co_await rd.read(std::vector<char>(64 * 1024));
        if (!r.n.ok() || *r.n == 0) break;
        got.insert(got.end(), r.buf.begin(), r.buf.begin() + *r.n);
      }
      EXPECT_TRUE((co_await writer).ok());
      EXPECT_TRUE((co_await server).ok());
    }());
    EXPECT_EQ(got.size(), size);
    EXPECT_TRUE(got == data);
  }

  std::optional<Runtime> rt_;
  int baseline_ = 0;
  pollux::testing::Watchdog dog_{std::chrono::seconds(30), "unix test"};
};

TEST_F(UnixTest, EchoOverAFilesystemPath) {
  const std::string path = temp_path("echo");
  ::unlink(path.c_str());
  echo(path, 1 << 20);
  ::unlink(path.c_str());
}

TEST_F(UnixTest, EchoOverAnAbstractName) {
  echo(absl::StrCat("@pollux-net-test-", ::getpid()), 256 * 1024);
}

TEST_F(UnixTest, ConnectToAMissingPathIsNotFoundNamingIt) {
  const std::string path = temp_path("missing");
  ::unlink(path.c_str());
  absl::StatusOr<UnixStream> s = rt().block_on(UnixStream::connect(path));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound) << s.status();
  EXPECT_EQ(errno_of(s.status()), ENOENT);
  EXPECT_NE(s.status().message().find(path), absl::string_view::npos) << s.status();
}

TEST_F(UnixTest, ConnectToAStaleSocketFileIsRefusedAndBindIsInUse) {
  const std::string path = temp_path("stale");
  ::unlink(path.c_str());
  { absl::StatusOr<UnixListener> l = UnixListener::bind(path); ASSERT_TRUE(l.ok()); }
  // The file remains, nobody listens.
  absl::StatusOr<UnixStream> s = rt().block_on(UnixStream::connect(path));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  EXPECT_EQ(errno_of(s.status()), ECONNREFUSED);
  absl::StatusOr<UnixListener> again = UnixListener::bind(path);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_NE(again.status().message().find(path), absl::string_view::npos) << again.status();
  ::unlink(path.c_str());
}

TEST_F(UnixTest, BadPathsAreInvalidArgument) {
  for (const std::string& p : {std::string(""), std::string("@"), std::string(200, 'x')}) {
    absl::StatusOr<UnixListener> l = UnixListener::bind(p);
    ASSERT_FALSE(l.ok()) << p;
    EXPECT_EQ(l.status().code(), absl::StatusCode::kInvalidArgument) << l.status();
    absl::StatusOr<UnixStream> s = rt().block_on(UnixStream::connect(p));
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  }
}

TEST_F(UnixTest, WriteToAClosedPeerNamesThePath) {
  const std::string name = absl::StrCat("@pollux-net-closed-", ::getpid());
  absl::StatusOr<UnixListener> l = UnixListener::bind(name);
  ASSERT_TRUE(l.ok()) << l.status();
  absl::Status err = rt().block_on([&]() -> Task<absl::Status> {
    auto [a, c] = co_await join(l->accept(), UnixStream::connect(name));
    if (!a.ok() || !c.ok()) co_return absl::InternalError("no connection");
    { UnixStream gone = std::move(*a); }
    IoResult r = co_await c->write(bytes("x"));
    co_return r.n.status();
  }());
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(errno_of(err), EPIPE) << err;
  EXPECT_NE(err.message().find(absl::StrCat("write to ", name)), absl::string_view::npos) << err;
}

}  // namespace
}  // namespace pollux::net
