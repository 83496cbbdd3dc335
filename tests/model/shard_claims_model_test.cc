// A model of the shard hand-over behind examples::EventCounts
// (examples/event_counts.h) on the real ShardClaims: two threads each claim
// a shard index, add to that shard as EventCounts::add does (a relaxed load
// and store, no read-modify-write: the owner is the only writer) and give
// the index back, while a third reads. Whether they overlap (two indexes)
// or follow each other (one index, handed over), no add is lost: the
// release of one owner orders its store before the next owner's load.
//
// The planted claims with relaxed orders (tests/model/planted/
// relaxed_shard_claims.h) must lose an add.
#include <cstdint>

#include "examples/event_counts.h"
#include "future/internal/atomic.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/relaxed_shard_claims.h"

namespace pollux::model {
namespace {

class ShardClaimsModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

template <class Claims>
void two_owners_add_in_turn_or_at_once() {
  Claims claims;
  detail::Atomic<uint64_t> shards[2] = {0, 0};  // the only indexes two threads can hold
  auto adder = [&](uint64_t n) {
    const uint32_t index = claims.claim();
    MODEL_ASSERT(index < 2);
    // As EventCounts::add. relaxed: this thread is the shard's only writer.
    shards[index].store(shards[index].load(std::memory_order_relaxed) + n,
                        std::memory_order_relaxed);
    claims.release(index);
  };
  detail::Thread a([&] { adder(1); });
  detail::Thread b([&] { adder(2); });
  a.join();
  b.join();
  // relaxed: the joins order both adds before these loads.
  MODEL_ASSERT(shards[0].load(std::memory_order_relaxed) +
                   shards[1].load(std::memory_order_relaxed) ==
               3);
}

TEST_F(ShardClaimsModelTest, AHandedOverShardKeepsItsPreviousOwnersAdds) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(two_owners_add_in_turn_or_at_once<examples::detail::ShardClaims>,
                        {.name = "ShardClaims: two owners, in turn or at once"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(ShardClaimsModelTest, PlantedRelaxedClaimsLoseAnAdd) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(two_owners_add_in_turn_or_at_once<planted::RelaxedShardClaims>),
              ExitsWithFailure(), "pollux model checker");
}

}  // namespace
}  // namespace pollux::model
