// The fake-backend echo (bench/fake_echo.h) echoes every message on both
// sides and pollux's leaves no op slot behind, so the benchmark's ratio
// compares the same work.
#include "bench/fake_echo.h"

#include <gtest/gtest.h>

namespace pollux::bench {
namespace {

TEST(FakeEcho, PolluxEchoesEveryMessageWholeAndFreesEverySlot) {
  const EchoRun run = pollux_echo(7, 300, 64);
  EXPECT_EQ(run.messages, 7 * 300);
  EXPECT_EQ(run.bytes, 7 * 300 * 64);
  EXPECT_EQ(run.live_ops_after, 0u);
  // Every round trip is a recv and a send, each completing at an entry: at
  // least two entries per message of one connection, shared by all.
  EXPECT_GE(run.kernel_entries, 2u * 300);
}

TEST(FakeEcho, HandWrittenEchoesTheSameWork) {
  const EchoRun run = hand_written_echo(7, 300, 64);
  EXPECT_EQ(run.messages, 7 * 300);
  EXPECT_EQ(run.bytes, 7 * 300 * 64);
  EXPECT_GE(run.kernel_entries, 2u * 300);
}

}  // namespace
}  // namespace pollux::bench
