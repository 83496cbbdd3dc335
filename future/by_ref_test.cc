#include "future/by_ref.h"

#include <utility>

#include "future/context.h"
#include "future/select.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using ::pollux::testing::CountingWaker;
using ::pollux::testing::make_manual_future;

template <class F>
auto PollOnce(F& f, const Waker& w) {
  Budget budget;
  Context cx(w, budget);
  return f.poll(cx);
}

// One future races in three selects in turn: it is polled in place each
// time (its poll count goes on), losing a race does not drop it, and the
// race it wins gives its value.
TEST(ByRefTest, OneFutureTakesPartInSeveralRacesAndIsNeverDroppedByThem) {
  CountingWaker cw;
  auto [kept, kept_handle] = make_manual_future<int>();
  for (int race = 0; race < 2; ++race) {
    auto [other, other_handle] = make_manual_future<int>();
    auto s = select(std::move(other), by_ref(kept));
    EXPECT_TRUE(PollOnce(s, cw.waker()).is_pending());
    other_handle.complete(race);
    auto p = PollOnce(s, cw.waker());
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value().index, 0u);
    EXPECT_FALSE(kept_handle.dropped()) << "a lost race dropped the kept future";
  }
  EXPECT_EQ(kept_handle.polls(), 2);  // once per race: the winner, polled first, ends each
  auto [last, last_handle] = make_manual_future<int>();
  auto s = select(std::move(last), by_ref(kept));
  kept_handle.complete(7);
  auto p = PollOnce(s, cw.waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(std::get<1>(p.value().value), 7);
}

}  // namespace
}  // namespace pollux
