// Tests for map() and then() (map.h).
#include "future/map.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "future/context.h"
#include "future/future.h"
#include "future/ready.h"
#include "future/testing/counted.h"
#include "future/testing/manual_future.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::make_manual_future;

using testing::Harness;

using Log = std::vector<std::string>;

// Returns Pending (waking itself by ref) for `pending_polls` polls, then
// Ready(value). Logs "<name>:ctor", "<name>:poll" and "<name>:dtor" (the
// destructor only for the instance that was not moved from) and records the
// address it was polled at.
class LoggedFuture {
 public:
  using Output = int;
  LoggedFuture(Log* log, std::string name, int value, int pending_polls)
      : log_(log), name_(std::move(name)), value_(value), pending_polls_(pending_polls) {
    log_->push_back(name_ + ":ctor");
  }
  LoggedFuture(LoggedFuture&& o) noexcept
      : log_(std::exchange(o.log_, nullptr)),
        name_(std::move(o.name_)),
        value_(o.value_),
        pending_polls_(o.pending_polls_),
        addresses_(o.addresses_) {}
  ~LoggedFuture() {
    if (log_ != nullptr) log_->push_back(name_ + ":dtor");
  }

  Poll<int> poll(Context& cx) {
    log_->push_back(name_ + ":poll");
    if (addresses_ != nullptr) addresses_->push_back(this);
    if (pending_polls_ > 0) {
      --pending_polls_;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready(value_);
  }

  LoggedFuture&& record_addresses(std::vector<const void*>* a) && {
    addresses_ = a;
    return std::move(*this);
  }

 private:
  Log* log_;
  std::string name_;
  int value_;
  int pending_polls_;
  std::vector<const void*>* addresses_ = nullptr;
};

// Throws std::runtime_error on its first poll.
template <class T>
struct ThrowingFuture {
  using Output = T;
  Poll<T> poll(Context&) { throw std::runtime_error("boom"); }
};

size_t index_of(const Log& log, const std::string& entry) {
  return static_cast<size_t>(std::find(log.begin(), log.end(), entry) - log.begin());
}

// ---------------------------------------------------------------------------
// map

TEST(MapTest, TransformsOutput) {
  Harness h;
  auto f = map(ready(2), [](int x) { return std::to_string(x * 10); });
  static_assert(std::is_same_v<output_t<decltype(f)>, std::string>);
  static_assert(Future<decltype(f)>);
  Poll<std::string> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), "20");
}

TEST(MapTest, VoidInput) {
  Harness h;
  auto f = map(ready(), [] { return 5; });
  static_assert(std::is_same_v<output_t<decltype(f)>, int>);
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 5);
}

TEST(MapTest, VoidOutput) {
  Harness h;
  int seen = 0;
  auto f = map(ready(3), [&](int x) { seen = x; });
  static_assert(std::is_same_v<output_t<decltype(f)>, void>);
  EXPECT_TRUE(f.poll(h.cx).is_ready());
  EXPECT_EQ(seen, 3);
}

TEST(MapTest, VoidInputAndVoidOutput) {
  Harness h;
  int calls = 0;
  auto f = map(ready(), [&] { ++calls; });
  static_assert(std::is_same_v<output_t<decltype(f)>, void>);
  EXPECT_TRUE(f.poll(h.cx).is_ready());
  EXPECT_EQ(calls, 1);
}

TEST(MapTest, MoveOnlyInputAndOutput) {
  Harness h;
  auto f = map(ready(std::make_unique<int>(4)), [](std::unique_ptr<int> p) {
    *p *= 2;
    return p;
  });
  Poll<std::unique_ptr<int>> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(*p.value(), 8);
}

TEST(MapTest, PendingPassesThroughAndFnRunsOnceOnReady) {
  Harness h;
  auto [fut, handle] = make_manual_future<int>();
  int calls = 0;
  auto f = map(std::move(fut), [&](int x) {
    ++calls;
    return x + 1;
  });
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(handle.polls(), 2);
  EXPECT_TRUE(handle.has_waker());  // the child saw the caller's waker

  handle.complete(41);
  EXPECT_EQ(h.cw.wakes_by_value(), 1);  // ... and woke it
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 42);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(handle.polls(), 3);
}

TEST(MapTest, ChildIsPolledInPlace) {
  Harness h;
  Log log;
  std::vector<const void*> addresses;
  auto f = map(LoggedFuture(&log, "child", 1, 2).record_addresses(&addresses),
               [](int x) { return x; });
  while (f.poll(h.cx).is_pending()) {
  }
  ASSERT_EQ(addresses.size(), 3u);
  EXPECT_EQ(addresses[0], addresses[1]);
  EXPECT_EQ(addresses[1], addresses[2]);
  EXPECT_EQ(h.cw.wakes_by_ref(), 2);
}

TEST(MapTest, FnCaptureDestroyedExactlyOnce) {
  Counted::reset();
  {
    Harness h;
    auto f = map(ready(1), [c = Counted(7)](int x) { return x + c.value; });
    EXPECT_GE(Counted::live(), 1);
    Poll<int> p = f.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value(), 8);
    // fn is consumed by the call: its captures are gone once map is Ready.
    EXPECT_EQ(Counted::live(), 0);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(MapTest, DroppingBeforeReadyDropsChildAndFn) {
  Counted::reset();
  auto [fut, handle] = make_manual_future<Counted>();
  {
    Harness h;
    auto f = map(std::move(fut), [c = Counted(1)](Counted x) { return x.value + c.value; });
    EXPECT_TRUE(f.poll(h.cx).is_pending());
    EXPECT_FALSE(handle.dropped());
  }
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(Counted::live(), 0);
  handle.complete(5);  // completing after the drop is harmless
  EXPECT_EQ(Counted::live(), 1);  // held by the handle's shared state only
}

TEST(MapTest, ChildThrowPropagates) {
  Harness h;
  int calls = 0;
  auto f = map(ThrowingFuture<int>{}, [&](int x) {
    ++calls;
    return x;
  });
  EXPECT_THROW((void)f.poll(h.cx), std::runtime_error);
  EXPECT_EQ(calls, 0);
}

TEST(MapTest, FnThrowPropagates) {
  Harness h;
  auto f = map(ready(1), [](int) -> int { throw std::logic_error("fn"); });
  EXPECT_THROW((void)f.poll(h.cx), std::logic_error);
}

// ---------------------------------------------------------------------------
// then

TEST(ThenTest, ChainsSecondFuture) {
  Harness h;
  auto f = then(ready(2), [](int x) { return ready(std::to_string(x * 3)); });
  static_assert(std::is_same_v<output_t<decltype(f)>, std::string>);
  static_assert(Future<decltype(f)>);
  Poll<std::string> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), "6");
}

TEST(ThenTest, VoidFirstAndVoidSecond) {
  Harness h;
  auto f = then(ready(), [] { return ready(5); });
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 5);

  int seen = 0;
  auto g = then(ready(9), [&](int x) {
    seen = x;
    return ready();
  });
  static_assert(std::is_same_v<output_t<decltype(g)>, void>);
  EXPECT_TRUE(g.poll(h.cx).is_ready());
  EXPECT_EQ(seen, 9);
}

TEST(ThenTest, FirstDestroyedBeforeSecondIsBuiltAndSecondPolledInPlace) {
  Harness h;
  Log log;
  std::vector<const void*> second_addresses;
  {
    auto f = then(LoggedFuture(&log, "first", 2, 1), [&](int x) {
      log.push_back("fn");
      return LoggedFuture(&log, "second", x * 5, 2).record_addresses(&second_addresses);
    });
    EXPECT_TRUE(f.poll(h.cx).is_pending());  // first pending
    EXPECT_EQ(index_of(log, "first:dtor"), log.size());  // not destroyed yet
    EXPECT_TRUE(f.poll(h.cx).is_pending());  // first ready -> second built and polled
    EXPECT_TRUE(f.poll(h.cx).is_pending());
    Poll<int> p = f.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value(), 10);
  }
  const size_t first_dtor = index_of(log, "first:dtor");
  const size_t fn = index_of(log, "fn");
  const size_t second_ctor = index_of(log, "second:ctor");
  ASSERT_LT(first_dtor, log.size());
  ASSERT_LT(fn, log.size());
  ASSERT_LT(second_ctor, log.size());
  EXPECT_LT(first_dtor, second_ctor);
  EXPECT_LT(fn, second_ctor);
  EXPECT_EQ(std::count(log.begin(), log.end(), "first:dtor"), 1);
  EXPECT_EQ(std::count(log.begin(), log.end(), "second:dtor"), 1);
  EXPECT_EQ(std::count(log.begin(), log.end(), "first:poll"), 2);
  EXPECT_EQ(std::count(log.begin(), log.end(), "second:poll"), 3);
  // The second future is polled in the same poll that built it, in place.
  EXPECT_EQ(log[second_ctor + 1], "second:poll");
  ASSERT_EQ(second_addresses.size(), 3u);
  EXPECT_EQ(second_addresses[0], second_addresses[1]);
  EXPECT_EQ(second_addresses[1], second_addresses[2]);
}

TEST(ThenTest, FnCaptureAndFutureContentsDestroyedExactlyOnce) {
  Counted::reset();
  {
    Harness h;
    auto f = then(ready(Counted(1)), [c = Counted(2)](Counted x) {
      return ready(Counted(x.value + c.value));
    });
    Poll<Counted> p = f.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value().value, 3);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(ThenTest, DroppingDuringFirstDropsFirstAndFn) {
  Counted::reset();
  auto [fut, handle] = make_manual_future<int>();
  bool fn_called = false;
  {
    Harness h;
    auto f = then(std::move(fut), [c = Counted(1), &fn_called](int x) {
      fn_called = true;
      return ready(x);
    });
    EXPECT_TRUE(f.poll(h.cx).is_pending());
  }
  EXPECT_TRUE(handle.dropped());
  EXPECT_FALSE(fn_called);
  EXPECT_EQ(Counted::live(), 0);
}

TEST(ThenTest, DroppingDuringSecondDropsSecond) {
  Counted::reset();
  auto [fut, handle] = make_manual_future<Counted>();
  {
    Harness h;
    auto* fut_ptr = &fut;  // structured bindings cannot be captured before clang 16
    auto f = then(ready(Counted(4)), [fut_ptr](Counted) { return std::move(*fut_ptr); });
    EXPECT_TRUE(f.poll(h.cx).is_pending());
    EXPECT_EQ(handle.polls(), 1);
    EXPECT_FALSE(handle.dropped());
    EXPECT_EQ(Counted::live(), 0);  // the first output was consumed by fn
  }
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(Counted::live(), 0);
}

TEST(ThenTest, SecondWokenFromHandle) {
  Harness h;
  auto [fut, handle] = make_manual_future<int>();
  auto* fut_ptr = &fut;
  auto f = then(ready(1), [fut_ptr](int) { return std::move(*fut_ptr); });
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  handle.complete(77);
  EXPECT_EQ(h.cw.wakes_by_value(), 1);
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 77);
}

TEST(ThenTest, ThrowsPropagate) {
  Harness h;
  auto a = then(ThrowingFuture<int>{}, [](int x) { return ready(x); });
  EXPECT_THROW((void)a.poll(h.cx), std::runtime_error);
  auto b = then(ready(1), [](int) -> ReadyFuture<int> { throw std::logic_error("fn"); });
  EXPECT_THROW((void)b.poll(h.cx), std::logic_error);
  auto c = then(ready(1), [](int) { return ThrowingFuture<int>{}; });
  EXPECT_THROW((void)c.poll(h.cx), std::runtime_error);
}

#ifndef NDEBUG
TEST(MapDeathTest, PollAfterReadyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto f = map(ready(1), [](int x) { return x; });
        (void)f.poll(h.cx);
        (void)f.poll(h.cx);
      },
      "map\\(\\) future polled after it returned Ready");
}

TEST(ThenDeathTest, PollAfterReadyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto f = then(ready(1), [](int x) { return ready(x); });
        (void)f.poll(h.cx);
        (void)f.poll(h.cx);
      },
      "then\\(\\) future polled after it returned Ready");
}
#endif

}  // namespace
}  // namespace pollux
