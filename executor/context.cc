#include "executor/context.h"

namespace pollux {

namespace {
thread_local RuntimeContext tls_context;
}  // namespace

RuntimeContext& RuntimeContext::current() noexcept { return tls_context; }

RuntimeContext::Enter::Enter(const RuntimeContext& ctx) noexcept : prev_(tls_context) {
  tls_context = ctx;
}

RuntimeContext::Enter::~Enter() { tls_context = prev_; }

}  // namespace pollux
