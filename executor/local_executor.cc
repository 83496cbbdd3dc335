#include "executor/local_executor.h"

#include <string>
#include <thread>

#include "executor/thread_parker.h"
#include "future/assert.h"

namespace pollux {

namespace detail {
int64_t live_tasks() noexcept;
}

int64_t live_task_cells() noexcept { return detail::live_tasks(); }

LocalExecutor::LocalExecutor()
    : own_driver_(std::make_unique<ThreadParker>()),
      driver_(own_driver_.get()),
      shared_(new detail::Shared(driver_->unparker(), /*bind_now=*/true)),
      core_(shared_) {
  shared_->set_owner_core(&core_);  // bound to this thread already
}

LocalExecutor::LocalExecutor(Driver& driver, bool bind_lazily)
    : driver_(&driver),
      shared_(new detail::Shared(driver_->unparker(), /*bind_now=*/!bind_lazily)),
      core_(shared_) {
  // A lazily bound executor's owner is not known yet: no bank outside ticks.
  if (!bind_lazily) shared_->set_owner_core(&core_);
}

LocalExecutor::~LocalExecutor() {
  check_owner();
  POLLUX_CHECK(detail::current_core() != &core_,
               "LocalExecutor destroyed from inside one of its own tasks");
  // Futures dropped below may wake tasks of this executor: with the core
  // current and the executor closed, those wakes just drop their reference.
  detail::CurrentCoreGuard guard(&core_);
  detail::TaskList leftover;
  detail::TaskList unadopted;
  shared_->close(leftover, unadopted);
  while (detail::Header* h = unadopted.pop_front()) detail::cancel_unowned_task(h);
  // Tasks queued still RUNNING (they woke themselves) finish here, before
  // the walk below, which expects every task it meets to be idle.
  leftover.append(std::move(core_.run_queue));
  while (detail::Header* h = leftover.pop_front()) detail::abandon_queued_task(&core_, h);
  while (core_.owned_head != nullptr) {
    detail::Header* h = core_.owned_head;
    detail::shutdown_task(h);
    POLLUX_CHECK(core_.owned_head != h, "a task could not be shut down (still running?)");
  }
  leftover.append(std::move(core_.run_queue));
  while (detail::Header* h = leftover.pop_front()) detail::drop_reference(h);
  shared_->set_owner_core(nullptr);  // core_ is about to go; cells freed later use the atomic
  shared_->ref_dec();
}

void LocalExecutor::check_owner() const {
  POLLUX_CHECK(shared_->bind_owner(),
               "LocalExecutor used from a thread other than the one that created it; "
               "wake its tasks from other threads through their wakers instead");
}

void LocalExecutor::check_can_block(const char* what) const {
  check_owner();
  if (detail::current_core() != nullptr) {
    std::string msg = std::string(what) +
                      " called while an executor is running on this thread (from inside a "
                      "task or a block_on root future); co_await or poll the future instead";
    detail::check_failed("current_core() == nullptr", msg.c_str(), __FILE__, __LINE__);
  }
}

void LocalExecutor::drain_injected() {
  if (!shared_->has_injected()) return;
  detail::TaskList spawned;
  shared_->drain_inject(core_.run_queue, spawned);
  while (detail::Header* h = spawned.pop_front()) {
    core_.own(h);
    core_.run_queue.push_back(h);
  }
}

size_t LocalExecutor::run_tick() {
  drain_injected();
  size_t polls = 0;
  for (; polls < kTickPolls; ++polls) {
    detail::Header* h = core_.run_queue.pop_front();
    if (h == nullptr) break;
    detail::run_task(h, core_.budget);
  }
  return polls;
}

size_t LocalExecutor::run_until_idle() {
  check_can_block("run_until_idle");
  detail::CurrentCoreGuard guard(&core_);
  size_t polls = 0;
  for (;;) {
    if (!has_runnable()) {
      driver_->poll_nonblocking();
      if (!has_runnable()) return polls;
    }
    polls += run_tick();
  }
}

}  // namespace pollux
