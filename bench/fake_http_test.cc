// The fake-backend HTTP loops (bench/fake_http.h) answer every request of
// every connection with exactly kHelloResponse, pollux's leaves no op slot
// behind, and the peers really compare the bytes (a wrong response is
// counted), so the benchmark's ratio compares the same, checked work.
//
//   ./bazelw test //bench:fake_http_test
#include "bench/fake_http.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "bench/fake_sockets.h"
#include "examples/http_wire.h"

namespace pollux::bench {
namespace {

using examples::http::kHelloRequest;
using examples::http::kHelloResponse;

constexpr int kConnections = 7;
constexpr int64_t kRequests = 300;

// kHelloResponse with one byte of the body changed (same length, so a run
// expecting it goes on to the end and only the comparison can tell).
std::string one_byte_off() {
  std::string wrong(kHelloResponse);
  wrong[wrong.size() - 2] = '?';  // "Hello, World?!" -> not what is sent
  return wrong;
}

TEST(FakeHttp, PolluxAnswersEveryRequestExactlyAndFreesEverySlot) {
  const HttpRun run = pollux_http(kConnections, kRequests, kHelloResponse);
  EXPECT_EQ(run.requests, kConnections * kRequests);
  EXPECT_EQ(run.mismatches, 0);
  EXPECT_EQ(run.live_ops_after, 0u);
  // Every request is a recv and a send, each completing at an entry: at
  // least two entries per request of one connection, shared by all.
  EXPECT_GE(run.kernel_entries, 2u * kRequests);
}

TEST(FakeHttp, HandWrittenAnswersTheSameWork) {
  const HttpRun run = hand_written_http(kConnections, kRequests, kHelloResponse);
  EXPECT_EQ(run.requests, kConnections * kRequests);
  EXPECT_EQ(run.mismatches, 0);
  EXPECT_GE(run.kernel_entries, 2u * kRequests);
}

TEST(FakeHttp, BothLoopsReportResponsesThatDifferFromTheExpectedBytes) {
  const std::string wrong = one_byte_off();
  const HttpRun pollux = pollux_http(3, 20, wrong);
  EXPECT_EQ(pollux.requests, 3 * 20);
  EXPECT_EQ(pollux.mismatches, 3 * 20);
  const HttpRun hand = hand_written_http(3, 20, wrong);
  EXPECT_EQ(hand.requests, 3 * 20);
  EXPECT_EQ(hand.mismatches, 3 * 20);
}

// The peers against a server played by hand on the sockets: what a wrong
// server could send, each case on its own socket.
TEST(HttpPeers, CountWrongSplitAndOverlongResponses) {
  FakeSockets sockets(3);
  HttpPeers peers(sockets, 3, 2, kHelloResponse);
  std::vector<char> buf(4096);
  // The server takes each first request (the peers then expect responses).
  for (int fd = 0; fd < 3; ++fd) {
    ASSERT_EQ(sockets.recv(fd, buf.data(), buf.size()),
              static_cast<int32_t>(kHelloRequest.size()));
    EXPECT_EQ(std::string_view(buf.data(), kHelloRequest.size()), kHelloRequest);
  }
  EXPECT_FALSE(peers.step());  // nothing sent yet: nothing to take
  const std::string wrong = one_byte_off();
  // fd 0: one byte off. fd 1: right, in two pieces. fd 2: right, plus a byte.
  sockets.send(0, wrong.data(), wrong.size());
  sockets.send(1, kHelloResponse.data(), 10);
  sockets.send(2, kHelloResponse.data(), kHelloResponse.size());
  sockets.send(2, "x", 1);
  EXPECT_TRUE(peers.step());
  EXPECT_EQ(peers.responses(), 2);  // fd 1 has had only part of its response
  EXPECT_EQ(peers.mismatches(), 2);
  sockets.send(1, kHelloResponse.data() + 10, kHelloResponse.size() - 10);
  EXPECT_TRUE(peers.step());
  EXPECT_EQ(peers.responses(), 3);
  EXPECT_EQ(peers.mismatches(), 2);
  EXPECT_FALSE(peers.done());  // each has a second request to make
  // Each peer has sent its second request once its first response was whole.
  for (int fd = 0; fd < 3; ++fd) {
    ASSERT_EQ(sockets.recv(fd, buf.data(), buf.size()),
              static_cast<int32_t>(kHelloRequest.size()));
  }
  EXPECT_FALSE(peers.step());
  for (int fd = 0; fd < 3; ++fd) sockets.send(fd, kHelloResponse.data(), kHelloResponse.size());
  EXPECT_TRUE(peers.step());
  EXPECT_TRUE(peers.done());
  EXPECT_EQ(peers.responses(), 6);
  EXPECT_EQ(peers.mismatches(), 2);
}

}  // namespace
}  // namespace pollux::bench
