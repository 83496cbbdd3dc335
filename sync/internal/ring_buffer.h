// RingBuffer<T>: a FIFO in one contiguous array, for the channels' queues
// (a std::deque allocates ~512-byte chunks as it goes and frees them as it
// drains; this keeps its capacity). Growing is split so that the allocation
// happens outside the channel's lock (DESIGN §8): try_push fails when full;
// the caller allocates with make_room() unlocked, then install()s it under
// the lock. Not thread-safe: the channel's lock guards it.
#ifndef POLLUX_SYNC_INTERNAL_RING_BUFFER_H_
#define POLLUX_SYNC_INTERNAL_RING_BUFFER_H_

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "future/assert.h"

namespace pollux::sync::detail {

template <class T>
class RingBuffer {
 public:
  RingBuffer() = default;
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;
  ~RingBuffer() {
    clear();
    ::operator delete(slots_, std::align_val_t(alignof(T)));
  }

  bool empty() const noexcept { return size_ == 0; }
  size_t size() const noexcept { return size_; }

  bool full() const noexcept { return size_ == cap_; }
  size_t capacity() const noexcept { return cap_; }

  // Appends `v`; false (v untouched) when full.
  bool try_push(T& v) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (size_ == cap_) return false;
    new (slot(head_ + size_)) T(std::move(v));
    ++size_;
    return true;
  }

  // Raw room for `cap` elements (a power of two), to install() later.
  class Room {
   public:
    explicit Room(size_t cap)
        : cap_(cap),
          p_(static_cast<T*>(::operator new(cap * sizeof(T), std::align_val_t(alignof(T))))) {}
    Room(const Room&) = delete;
    Room& operator=(const Room&) = delete;
    ~Room() { ::operator delete(p_, std::align_val_t(alignof(T))); }

   private:
    friend class RingBuffer;
    size_t cap_;
    T* p_;
  };
  // The next capacity for a full buffer.
  size_t next_capacity() const noexcept { return cap_ == 0 ? 8 : cap_ * 2; }
  // Moves the elements into `room` if it is bigger than the current array;
  // the old array goes back into `room` (freed with it, after the unlock).
  void install(Room& room) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (room.cap_ <= cap_) return;
    for (size_t i = 0; i < size_; ++i) {
      T* from = slot(head_ + i);
      new (room.p_ + i) T(std::move(*from));
      from->~T();
    }
    std::swap(slots_, room.p_);
    std::swap(cap_, room.cap_);
    head_ = 0;
  }
  // Requires !empty().
  T pop_front() noexcept(std::is_nothrow_move_constructible_v<T>) {
    POLLUX_DCHECK(size_ > 0, "pop_front of an empty RingBuffer");
    T* p = slot(head_);
    T v(std::move(*p));
    p->~T();
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    return v;
  }
  // Requires !empty().
  T& front() noexcept { return *slot(head_); }
  void clear() noexcept {
    while (size_ > 0) {
      slot(head_)->~T();
      head_ = (head_ + 1) & (cap_ - 1);
      --size_;
    }
  }

 private:
  // SAFETY: slots_ holds cap_ (a power of two) raw slots; the size_ from
  // head_ (mod cap_) hold live objects.
  T* slot(size_t i) const noexcept { return slots_ + (i & (cap_ - 1)); }

  T* slots_ = nullptr;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace pollux::sync::detail

#endif  // POLLUX_SYNC_INTERNAL_RING_BUFFER_H_
