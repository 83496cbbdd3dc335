// JoinSet<T>: tasks spawned together and joined in the order they finish.
//
//   sync::JoinSet<int> set;
//   for (int i = 0; i < 10; ++i) set.spawn([i]() -> Task<int> { co_return i; });
//   while (std::optional<JoinResult<int>> r = co_await set.join_next()) ...
//
// spawn() is pollux::spawn (executor/spawn.h) on this thread's executor; the
// set keeps the JoinHandles in a FuturesUnordered, so join_next() re-polls
// only the handles whose task finished. Dropping the set aborts every task
// still in it (tokio's JoinSet semantics); detach_all() lets them run on.
//
// Cancellation: dropping a join_next() future loses nothing (a finished
// task stays in the set until join_next returns it). Dropping the set aborts
// its tasks: each one's future is dropped at its next scheduling point, on
// its executor's thread.
// Thread-safety: one task owns the set; the tasks run wherever spawn puts them.
#ifndef POLLUX_SYNC_JOIN_SET_H_
#define POLLUX_SYNC_JOIN_SET_H_

#include <optional>
#include <type_traits>
#include <utility>

#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "executor/spawn_location.h"
#include "sync/futures_unordered.h"

namespace pollux::sync {

// Spawned tasks joined in finishing order; dropping the set aborts them (see
// above).
template <class T>
class JoinSet {
 public:
  JoinSet() = default;
  JoinSet(const JoinSet&) = delete;
  JoinSet& operator=(const JoinSet&) = delete;
  ~JoinSet() { abort_all(); }

  // Spawns `f` (a future, or a callable returning one) and keeps its handle.
  // `loc`: the spawn site the task dump shows (defaulted: the caller's line).
  template <class F>
  void spawn(F&& f, SpawnLocation loc = SpawnLocation::current()) {
    auto h = pollux::spawn(std::forward<F>(f), loc);
    static_assert(std::is_same_v<decltype(h), JoinHandle<T>>,
                  "JoinSet<T>::spawn needs a future whose output is T");
    handles_.push(std::move(h));
  }
  // Keeps an already spawned task's handle.
  void insert(JoinHandle<T> h) { handles_.push(std::move(h)); }

  // The result of the next task to finish, or nullopt when the set is empty.
  auto join_next() noexcept { return handles_.next(); }

  // Asks every task in the set to stop (their results, Cancelled or the
  // value if they finished first, still come out of join_next).
  void abort_all() noexcept {
    handles_.for_each([](JoinHandle<T>& h) { h.abort(); });
  }
  // Forgets every task: they run on, unobserved.
  void detach_all() noexcept { handles_.clear(); }  // a dropped handle detaches its task

  size_t size() const noexcept { return handles_.size(); }
  bool empty() const noexcept { return handles_.empty(); }

 private:
  FuturesUnordered<JoinHandle<T>> handles_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_JOIN_SET_H_
