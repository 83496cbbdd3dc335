// this_thread_token(): a cheap identity of the calling thread, for "am I the
// owner?" checks on hot paths (spawn, wake, free): the address of a
// thread_local byte, one TLS address computation, where
// std::this_thread::get_id() is a call into libc. Unique among the threads
// alive at once; like a thread id, it may be reused once a thread has exited.
#ifndef POLLUX_EXECUTOR_INTERNAL_THREAD_TOKEN_H_
#define POLLUX_EXECUTOR_INTERNAL_THREAD_TOKEN_H_

namespace pollux::detail {

inline const void* this_thread_token() noexcept {
  static thread_local char token;
  return &token;
}

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_THREAD_TOKEN_H_
