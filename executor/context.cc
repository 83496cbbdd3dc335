#include "executor/context.h"

namespace pollux {

namespace detail {
constinit thread_local RuntimeContext tls_runtime_context;
}  // namespace detail

RuntimeContext::Enter::Enter(const RuntimeContext& ctx) noexcept
    : prev_(detail::tls_runtime_context) {
  detail::tls_runtime_context = ctx;
}

RuntimeContext::Enter::~Enter() { detail::tls_runtime_context = prev_; }

}  // namespace pollux
