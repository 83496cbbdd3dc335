#include "future/waker.h"

namespace pollux {
namespace {

Waker noop_clone(void*) noexcept;
void noop(void*) noexcept {}

constexpr WakerVTable kNoopVTable = {&noop_clone, &noop, &noop, &noop};

Waker noop_clone(void*) noexcept { return Waker::from_raw(nullptr, &kNoopVTable); }

}  // namespace

const Waker& noop_waker() noexcept {
  static const Waker waker = Waker::from_raw(nullptr, &kNoopVTable);
  return waker;
}

}  // namespace pollux
