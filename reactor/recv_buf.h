// RecvBuf: a lease on the bytes one receive delivered (RecvStream,
// recv_stream.h).
//
//   absl::StatusOr<RecvBuf> b = co_await in.next();
//   if (b.ok() && !b->empty()) consume(b->data(), b->size());
//   // dropping b gives its buffer back
//
// On io_uring the bytes sit in one of the backend's provided buffers (the
// ring the kernel fills multishot recvs from); dropping the lease (or
// reset()) puts that buffer back in the ring, where the kernel can fill it
// again, and re-arms a multishot recv that had run out (-ENOBUFS). Holding
// leases therefore holds the backend's receive capacity: consume or copy
// the bytes and drop the lease, rather than keeping it across long waits.
// Elsewhere (epoll, test backends) the lease owns an ordinary heap buffer,
// which goes back to its stream for the next recv when the lease is dropped
// on the stream's thread (so a steady read loop allocates nothing there
// either); dropped elsewhere, or after the stream, it is simply freed.
//
// An empty lease (size() == 0) is what RecvStream hands out at the end of
// the stream, and what a moved-from or reset lease is.
//
// Thread-safety: move-only; a lease may move between tasks (it does not pin
// them, DESIGN §4) but is dropped on the thread of the backend it came from
// (checked), and before that backend's runtime is destroyed (checked there:
// its buffer would go back into freed memory).
#ifndef POLLUX_REACTOR_RECV_BUF_H_
#define POLLUX_REACTOR_RECV_BUF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "reactor/backend.h"

namespace pollux::reactor {

namespace detail {
// Where a fallback lease's buffer goes back to (RecvStream's spare buffer).
struct RecvSpare {
  std::vector<char> buf;
  Backend* backend = nullptr;  // the stream's: only its thread touches buf
};
}  // namespace detail

// The bytes of one receive, leased from the backend (see above).
class [[nodiscard]] RecvBuf {
 public:
  RecvBuf() noexcept = default;
  // Returns the buffer without clearing fields the member destructors
  // discard anyway (one lease per message on the echo path); the move
  // assignment likewise, as it overwrites them.
  ~RecvBuf() { give_back(); }
  RecvBuf(RecvBuf&& o) noexcept
      : backend_(std::exchange(o.backend_, nullptr)),
        buf_(std::exchange(o.buf_, -1)),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        owned_(std::move(o.owned_)),
        home_(std::move(o.home_)) {}
  RecvBuf& operator=(RecvBuf&& o) noexcept {
    if (this != &o) {
      give_back();  // every field is overwritten below
      backend_ = std::exchange(o.backend_, nullptr);
      buf_ = std::exchange(o.buf_, -1);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      owned_ = std::move(o.owned_);  // a vector's move keeps its heap block: data_ stays valid
      home_ = std::move(o.home_);
    }
    return *this;
  }
  RecvBuf(const RecvBuf&) = delete;
  RecvBuf& operator=(const RecvBuf&) = delete;

  const char* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept { return {data_, size_}; }

  // Gives the buffer back now (on the backend's thread); the lease is then
  // empty.
  void reset() noexcept {
    give_back();
    owned_ = std::vector<char>();
    data_ = nullptr;
    size_ = 0;
  }

 private:
  friend class RecvStream;
  // Provided buffer `buf` of `b`, holding `size` bytes at `data`.
  RecvBuf(Backend* b, int32_t buf, const char* data, size_t size) noexcept
      : backend_(b), buf_(buf), data_(data), size_(size) {}
  // The first `size` bytes of `v`, which goes back to `home` when dropped.
  RecvBuf(std::vector<char> v, size_t size, std::shared_ptr<detail::RecvSpare> home) noexcept
      : data_(v.data()), size_(size), owned_(std::move(v)), home_(std::move(home)) {}
  // recv_stream.cc
  void give_back() noexcept {
    if (backend_ != nullptr) return_to_backend();
    if (home_ != nullptr) return_to_stream();
  }
  void return_to_backend() noexcept;
  void return_to_stream() noexcept;

  Backend* backend_ = nullptr;  // set: a provided buffer of this backend
  int32_t buf_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
  std::vector<char> owned_;  // the fallback's own buffer
  std::shared_ptr<detail::RecvSpare> home_;  // where owned_ goes back to
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_RECV_BUF_H_
