// join_all(futures): one future that runs a whole vector of futures and
// completes with all their outputs, in the vector's order.
//
//   std::vector<Fetch> fetches = ...;
//   std::vector<Reply> replies = co_await sync::join_all(std::move(fetches));
//
// For a number of futures known only at run time (the n-ary `join` in
// future/join.h takes them as template arguments). Built on
// FuturesUnordered: a wake re-polls only the future it belongs to, so
// joining 10,000 futures costs a poll per wake, not 10,000. A void future's
// output is Unit.
//
// Cancellation: dropping it drops every future not yet finished (each with
// its own cancellation semantics) and the outputs already collected.
// Thread-safety: as FuturesUnordered (one task; its futures' wakers from
// anywhere).
#ifndef POLLUX_SYNC_JOIN_ALL_H_
#define POLLUX_SYNC_JOIN_ALL_H_

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "future/future.h"
#include "sync/futures_unordered.h"

namespace pollux::sync {

// The future join_all(futures) returns: every output, in the vector's order.
template <Future F>
class [[nodiscard]] JoinAll {
 public:
  using Item = stored_output_t<F>;
  using Output = std::vector<Item>;

  explicit JoinAll(std::vector<F> futures) : out_(futures.size()) {
    for (size_t i = 0; i < futures.size(); ++i) set_.push(Indexed{std::move(futures[i]), i});
  }

  Poll<Output> poll(Context& cx) {
    for (;;) {
      auto next = set_.next();
      Poll<std::optional<std::pair<size_t, Item>>> p = next.poll(cx);
      if (p.is_pending()) return Pending{};
      std::optional<std::pair<size_t, Item>> done = std::move(p).value();
      if (!done) break;  // every future finished
      out_[done->first].emplace(std::move(done->second));
    }
    Output all;
    all.reserve(out_.size());
    for (std::optional<Item>& v : out_) all.push_back(std::move(*v));
    return Ready(std::move(all));
  }

 private:
  struct Indexed {
    using Output = std::pair<size_t, Item>;
    F f;
    size_t index;
    Poll<Output> poll(Context& cx) {
      Poll<Item> p = pollux::detail::poll_unit(f, cx);
      if (p.is_pending()) return Pending{};
      return Ready(Output(index, std::move(p).value()));
    }
  };

  FuturesUnordered<Indexed> set_;
  std::vector<std::optional<Item>> out_;
};

template <Future F>
[[nodiscard]] JoinAll<F> join_all(std::vector<F> futures) {
  return JoinAll<F>(std::move(futures));
}

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_JOIN_ALL_H_
