#include "examples/event_counts.h"

namespace pollux::examples::detail {

// Read after t_holder below is destroyed too: an add made from a later
// thread-local destructor sees kNone and uses the overflow.
constinit thread_local uint32_t t_shard = kUnclaimed;

namespace {

// Trivially destructible and constant-initialized: usable by every thread
// until the process ends, including from other thread-locals' destructors.
constinit ShardClaims g_claims;

// Gives this thread's index back when the thread exits.
struct ShardHolder {
  ~ShardHolder() {
    if (t_shard < kShards) g_claims.release(t_shard);
    t_shard = ShardClaims::kNone;
  }
};
thread_local ShardHolder t_holder;

}  // namespace

uint32_t claim_this_thread_shard() noexcept {
  t_shard = g_claims.claim();
  // Constructs the holder (registering its destructor) only when there is
  // an index to give back.
  if (t_shard < kShards) static_cast<void>(&t_holder);
  return t_shard;
}

}  // namespace pollux::examples::detail
