// EventCounts<N>: N event counters (connections accepted, bytes read, ...)
// that many threads add to and any thread reads, with no locked instruction
// per add.
//
//   EventCounts<2> counts;                 // 0: requests, 1: bytes
//   counts.add(0, 1);                      // on any thread
//   uint64_t served = counts.total(0);     // on any thread
//
// Why: a locked read-modify-write costs about 7 ns on these machines even
// when no other thread touches the line (a fetch_add; a CAS loop about 12),
// and three of them per message were about a tenth of the echo server's
// user time per message (BENCHMARKS.md, issue 17). Instead, each thread adds
// to a shard of its own with a relaxed load and a relaxed store: it is that
// shard's only writer, so nothing is lost, and the shard's cache line stays
// with it. total() sums the shards.
//
// Shards: a thread claims one of kShards indexes, process-wide (the same
// index in every EventCounts), on its first add, and gives it back when it
// exits. A thread that finds every index held, or that adds during its own
// exit after giving its index back, adds to the shared overflow shard with
// a fetch_add instead. An index passed from an exited thread to a new one
// keeps its counts: the old owner's release pairs with the new owner's
// claim, so the new owner's first load sees the old owner's last store
// (detail::ShardClaims; its model is tests/model/shard_claims_model_test.cc).
//
// Reading: total() is exact once the adders' work is ordered before it (a
// join); read meanwhile, it is at least every count ordered before the read
// and at most the counts so far (shards only grow).
//
// Thread-safety: add() and total() from any thread.
#ifndef POLLUX_EXAMPLES_EVENT_COUNTS_H_
#define POLLUX_EXAMPLES_EVENT_COUNTS_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "future/internal/atomic.h"

namespace pollux::examples {

namespace detail {

inline constexpr uint32_t kShards = 64;  // a bit each in ShardClaims' word

// Who holds which shard index: bit i is set while some thread holds index i.
class ShardClaims {
 public:
  static constexpr uint32_t kNone = kShards;

  // A free index, now the caller's until release(); kNone if all are held.
  uint32_t claim() noexcept {
    // relaxed: only a guess at which bit is free; the CAS decides.
    uint64_t held = held_.load(std::memory_order_relaxed);
    for (;;) {
      if (held == ~uint64_t{0}) return kNone;
      const auto index = static_cast<uint32_t>(__builtin_ctzll(~held));
      // acquire: pairs with release()'s release, so every store the index's
      // previous owner made to its shards is visible to the new owner,
      // whose adds load them. relaxed on failure: nothing was claimed.
      if (held_.compare_exchange_weak(held, held | (uint64_t{1} << index),
                                      std::memory_order_acquire, std::memory_order_relaxed)) {
        return index;
      }
    }
  }
  // Gives back an index claim() returned; the caller's adds to it are done.
  void release(uint32_t index) noexcept {
    // release: pairs with claim()'s acquire (see there).
    held_.fetch_and(~(uint64_t{1} << index), std::memory_order_release);
  }

 private:
  pollux::detail::Atomic<uint64_t> held_{0};
};

// Not yet claimed; distinct from kNone (the overflow shard).
inline constexpr uint32_t kUnclaimed = kShards + 1;

// This thread's shard index, or kUnclaimed. Constant-initialized (so read
// with no guard) and trivial (so still readable while the thread exits).
extern constinit thread_local uint32_t t_shard;

// Claims this thread's index (see this_thread_shard).
uint32_t claim_this_thread_shard() noexcept;

// This thread's shard index, claimed from the process-wide ShardClaims on
// first use and released at thread exit; kShards (ShardClaims::kNone) means
// the overflow shard.
inline uint32_t this_thread_shard() noexcept {
  const uint32_t shard = t_shard;
  return shard != kUnclaimed ? shard : claim_this_thread_shard();
}

}  // namespace detail

template <size_t N>
class EventCounts {
 public:
  EventCounts() = default;
  EventCounts(const EventCounts&) = delete;
  EventCounts& operator=(const EventCounts&) = delete;

  // Adds `n` to counter `event` (< N).
  void add(size_t event, uint64_t n) noexcept {
    // The common case inline: this thread holds a shard.
    const uint32_t shard = detail::t_shard;
    if (shard < detail::kShards) [[likely]] {
      add_to(shards_[shard], event, n);
    } else {
      add_unclaimed(event, n);
    }
  }

  // Counter `event` summed over the shards (see "Reading" above).
  uint64_t total(size_t event) const noexcept {
    // relaxed: a statistic; a join before the read orders the adds.
    uint64_t sum = overflow_.counts[event].load(std::memory_order_relaxed);
    for (const Shard& s : shards_) sum += s.counts[event].load(std::memory_order_relaxed);
    return sum;
  }

 private:
  // A cache line each: threads adding side by side do not share one.
  struct alignas(64) Shard {
    std::array<pollux::detail::Atomic<uint64_t>, N> counts{};
  };

  static void add_to(Shard& s, size_t event, uint64_t n) noexcept {
    pollux::detail::Atomic<uint64_t>& c = s.counts[event];
    // relaxed, and not a read-modify-write: this thread is the shard's only
    // writer (the header comment); readers want a statistic.
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // This thread has no shard yet (it claims one now), or none to have.
  [[gnu::noinline]] void add_unclaimed(size_t event, uint64_t n) noexcept {
    const uint32_t shard = detail::this_thread_shard();
    if (shard < detail::kShards) {
      add_to(shards_[shard], event, n);
    } else {
      // relaxed: a statistic; shared by the threads without a shard.
      overflow_.counts[event].fetch_add(n, std::memory_order_relaxed);
    }
  }
  std::array<Shard, detail::kShards> shards_{};
  Shard overflow_;
};

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_EVENT_COUNTS_H_
