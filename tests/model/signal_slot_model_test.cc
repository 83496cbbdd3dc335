// A model of the signal registry's slot (runtime/internal/signal_slot.h) on
// the real code: a handler delivers into a slot while the runtime that holds
// it reads what came, releases the slot, closes the fd and another runtime
// claims the slot for its own fd; a second handler delivers meanwhile. The
// handler's write to fd 1 must happen before fd 1's close (a RaceCell stands
// for the fd: an unordered write/close pair is the checker's data race), no
// handler writes to fd 1 after it was closed, and a byte the reader saw
// means the pending flag is there for it.
//
// The planted slot whose release() does not wait for the handlers inside
// (tests/model/planted/unwaited_signal_slot.h) must fail.
#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "runtime/internal/signal_slot.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/unwaited_signal_slot.h"

namespace pollux::model {
namespace {

class SignalSlotModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

template <class Slot>
void release_racing_deliveries() {
  Slot slot;
  detail::RaceCell<bool> fd1_open(true);  // the runtime's pipe write end
  detail::Atomic<int> bytes_in_fd1{0};     // what the pipe holds
  MODEL_ASSERT(slot.claim(1));
  auto handler = [&] {
    slot.deliver([&](int fd) {
      if (fd != 1) return;  // fd 2: the next runtime's, not modelled
      MODEL_ASSERT(fd1_open.get());  // a write to a closed fd is the bug
      // seq_cst: the pipe orders the byte before the reader's read.
      bytes_in_fd1.fetch_add(1, std::memory_order_seq_cst);
    });
  };
  detail::Thread a(handler);
  detail::Thread b(handler);
  // The reader: a byte read means its delivery's flag is there.
  // seq_cst: see the write.
  if (bytes_in_fd1.load(std::memory_order_seq_cst) > 0) MODEL_ASSERT(slot.take_pending());
  slot.release();
  fd1_open.get_mut() = false;  // close(fd 1)
  MODEL_ASSERT(slot.claim(2));  // the number-1 slot serves someone else now
  a.join();
  b.join();
}

TEST_F(SignalSlotModelTest, ReleaseWaitsForTheHandlersInside) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(release_racing_deliveries<detail::SignalSlot>,
                        {.name = "SignalSlot release vs two deliveries"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(SignalSlotModelTest, PlantedReleaseThatDoesNotWaitWritesAClosedFd) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(release_racing_deliveries<planted::UnwaitedSignalSlot>), ExitsWithFailure(),
              "pollux model checker");
}

}  // namespace
}  // namespace pollux::model
