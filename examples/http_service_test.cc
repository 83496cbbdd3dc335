// Tests for the hello HTTP/1.1 server (http_service.h) on real sockets on
// 127.0.0.1, driven by the project's own client (HttpResponseReader,
// http_get): exact response bytes for single, pipelined, keep-alive and
// byte-at-a-time requests; Connection: close, 400 and 431 answered and then
// closed; 50 concurrent clients. Each test builds a runtime, and after it is
// destroyed the process's open fd count must be back where it started.
#include "examples/http_service.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/http_wire.h"
#include "examples/testing/server_test.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace pollux::examples::http {
namespace {

using net::SocketAddr;
using net::TcpStream;

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.append(s);
  return out;
}

std::vector<char> bytes(std::string_view s) { return std::vector<char>(s.begin(), s.end()); }

// A GET whose head is exactly `length` bytes (padding in one header).
std::string request_of_length(size_t length) {
  const std::string prefix = "GET / HTTP/1.1\r\nX-Pad: ";
  const std::string suffix = "\r\n\r\n";
  return prefix + std::string(length - prefix.size() - suffix.size(), 'p') + suffix;
}

// Sends `request` in one write, then expects exactly `response` followed by
// the server closing the connection.
Task<void> expect_answer_then_close(SocketAddr addr, std::string request,
                                    std::string_view response) {
  std::optional<TcpStream> stream = co_await connect_to(addr);
  if (!stream) co_return;
  net::WriteAllResult w = co_await stream->write_all(bytes(request));
  EXPECT_TRUE(w.status.ok()) << w.status;
  HttpResponseReader reader(*stream);
  absl::StatusOr<std::string> r = co_await reader.next_response();
  CO_ASSERT_TRUE(r.ok(), r.status());
  EXPECT_EQ(*r, response);
  absl::Status eof = co_await reader.expect_end_of_stream();
  EXPECT_TRUE(eof.ok()) << eof;
}

// Ends the client's side and expects the server to end its side with no
// further bytes (no response nobody asked for).
Task<void> expect_clean_end(TcpStream& stream) {
  EXPECT_TRUE(stream.shutdown_write().ok());
  HttpResponseReader reader(stream);
  absl::Status eof = co_await reader.expect_end_of_stream();
  EXPECT_TRUE(eof.ok()) << eof;
}

class HttpServiceTest : public ServerTest {
 protected:
  template <class Client>
  void with_server(Client client) {
    ServerTest::with_server([](net::TcpListener l) { return serve_http(std::move(l)); },
                            std::move(client));
  }
};

TEST(InspectRequestHeadTest, JudgesRequestLinesAndConnectionHeaders) {
  EXPECT_EQ(inspect_request_head(kHelloRequest), RequestVerdict::kKeepAlive);
  EXPECT_EQ(inspect_request_head("HEAD /x?y=1 HTTP/1.1\r\n\r\n"), RequestVerdict::kKeepAlive);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n"),
            RequestVerdict::kClose);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"),
            RequestVerdict::kClose);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n"),
            RequestVerdict::kKeepAlive);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.0\r\n\r\n"), RequestVerdict::kClose);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            RequestVerdict::kKeepAliveAsked);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
            RequestVerdict::kClose);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"),
            RequestVerdict::kKeepAlive);
  EXPECT_EQ(inspect_request_head("GET /\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("GET / FTP/1.1\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("GET / HTTP/2.0\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("G(T / HTTP/1.1\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head(" GET / HTTP/1.1\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("GET  HTTP/1.1\r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1 \r\n\r\n"), RequestVerdict::kBad);
  EXPECT_EQ(inspect_request_head("GET / HTTP/1.1\r\nno colon here\r\n\r\n"), RequestVerdict::kBad);
}

TEST(InspectRequestHeadTest, NamesTheTargetOfAHeadThatIsNotBad) {
  std::string_view target = "unset";
  EXPECT_EQ(inspect_request_head("HEAD /x?y=1 HTTP/1.0\r\nHost: a\r\n\r\n", &target),
            RequestVerdict::kClose);
  EXPECT_EQ(target, "/x?y=1");
  EXPECT_EQ(inspect_request_head("GET /metrics HTTP/1.1\r\n\r\n", &target),
            RequestVerdict::kKeepAlive);
  EXPECT_EQ(target, "/metrics");
  target = "unset";
  EXPECT_EQ(inspect_request_head("GET /metrics HTTP/1.1\r\nbad header\r\n\r\n", &target),
            RequestVerdict::kBad);
  EXPECT_EQ(target, "unset") << "a bad head names no target";
}

TEST(AnswerRequestsTest, AnswersCompleteHeadsAndKeepsThePartialOne) {
  std::vector<char> out;
  const std::string input = repeat(kHelloRequest, 2) + "GET / HT";
  Answered a = answer_requests(input, out);
  EXPECT_EQ(a.consumed, 2 * kHelloRequest.size());
  EXPECT_FALSE(a.close);
  EXPECT_EQ(std::string(out.begin(), out.end()), repeat(kHelloResponse, 2));
}

TEST(AnswerRequestsTest, StopsAfterTheRequestThatCloses) {
  std::vector<char> out;
  const std::string input = std::string(kHelloRequest) +
                            "GET / HTTP/1.1\r\nConnection: close\r\n\r\n" +
                            std::string(kHelloRequest);
  Answered a = answer_requests(input, out);
  EXPECT_TRUE(a.close);
  EXPECT_EQ(std::string(out.begin(), out.end()),
            std::string(kHelloResponse) + std::string(kHelloCloseResponse));
}

TEST(AnswerRequestsTest, Http10KeepAliveIsAnsweredWithKeepAlive) {
  std::vector<char> out;
  const std::string input = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                            "GET / HTTP/1.0\r\n\r\n" + std::string(kHelloRequest);
  Answered a = answer_requests(input, out);
  EXPECT_TRUE(a.close);
  EXPECT_EQ(a.responses, 2u);
  EXPECT_EQ(std::string(out.begin(), out.end()),
            std::string(kHelloKeepAliveResponse) + std::string(kHelloCloseResponse));
}

TEST(AnswerRequestsTest, ClosingAnswersTheNextRequestWithConnectionClose) {
  std::vector<char> out;
  AnswerOptions closing;
  closing.closing = true;
  Answered a = answer_requests(repeat(kHelloRequest, 3), out, closing);
  EXPECT_TRUE(a.close);
  EXPECT_EQ(a.responses, 1u);
  EXPECT_EQ(a.consumed, kHelloRequest.size());
  EXPECT_EQ(std::string(out.begin(), out.end()), kHelloCloseResponse);
  out.clear();
  // A malformed request still gets its 400.
  a = answer_requests("BROKEN\r\n\r\n", out, closing);
  EXPECT_TRUE(a.close);
  EXPECT_EQ(std::string(out.begin(), out.end()), kBadRequestResponse);
}

TEST(AnswerRequestsTest, StopsAtTheOutputBoundAndResumes) {
  std::vector<char> out;
  AnswerOptions bounded;
  bounded.max_output_bytes = 3 * kHelloResponse.size();
  const std::string input = repeat(kHelloRequest, 5);
  Answered a = answer_requests(input, out, bounded);
  EXPECT_TRUE(a.output_full);
  EXPECT_FALSE(a.close);
  EXPECT_EQ(a.responses, 3u);
  EXPECT_EQ(a.consumed, 3 * kHelloRequest.size());
  out.clear();
  Answered rest = answer_requests(std::string_view(input).substr(a.consumed), out, bounded);
  EXPECT_FALSE(rest.output_full);
  EXPECT_EQ(rest.responses, 2u);
  EXPECT_EQ(std::string(out.begin(), out.end()), repeat(kHelloResponse, 2));
}

TEST(AnswerRequestsTest, HeadLimitIsInclusive) {
  std::vector<char> out;
  Answered at_limit = answer_requests(request_of_length(kMaxHeadBytes), out);
  EXPECT_FALSE(at_limit.close);
  EXPECT_EQ(std::string(out.begin(), out.end()), kHelloResponse);
  out.clear();
  Answered over = answer_requests(request_of_length(kMaxHeadBytes + 1), out);
  EXPECT_TRUE(over.close);
  EXPECT_EQ(std::string(out.begin(), out.end()), kHeaderTooLargeResponse);
  out.clear();
  // Incomplete but already too long: refused without waiting for the rest.
  Answered partial = answer_requests(std::string(kMaxHeadBytes + 1, 'a'), out);
  EXPECT_TRUE(partial.close);
  EXPECT_EQ(std::string(out.begin(), out.end()), kHeaderTooLargeResponse);
  out.clear();
  Answered waiting = answer_requests(std::string(kMaxHeadBytes, 'a'), out);
  EXPECT_FALSE(waiting.close);
  EXPECT_EQ(waiting.consumed, 0u);
  EXPECT_TRUE(out.empty());
}

TEST_F(HttpServiceTest, SingleGetReturnsExactlyTheHelloResponse) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    absl::StatusOr<std::string> r = co_await http_get(*stream, 1);
    CO_ASSERT_TRUE(r.ok(), r.status());
    EXPECT_EQ(*r, kHelloResponse);
    co_await expect_clean_end(*stream);
  });
}

TEST_F(HttpServiceTest, ThreePipelinedRequestsInOneWriteGetThreeResponses) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    absl::StatusOr<std::string> r = co_await http_get(*stream, 3);
    CO_ASSERT_TRUE(r.ok(), r.status());
    EXPECT_EQ(*r, repeat(kHelloResponse, 3));
    co_await expect_clean_end(*stream);
  });
}

TEST_F(HttpServiceTest, HundredSequentialRequestsOnOneKeepAliveConnection) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    int exact = 0;
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<std::string> r = co_await http_get(*stream, 1);
      CO_ASSERT_TRUE(r.ok(), "request " << i << ": " << r.status());
      if (*r == kHelloResponse) ++exact;
    }
    EXPECT_EQ(exact, 100);
    co_await expect_clean_end(*stream);
  });
}

TEST_F(HttpServiceTest, RequestSentOneBytePerWriteGetsOneResponse) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    EXPECT_TRUE(stream->set_nodelay(true).ok());  // one segment per byte
    for (size_t i = 0; i < kHelloRequest.size(); ++i) {
      net::WriteAllResult w = co_await stream->write_all(std::vector<char>(1, kHelloRequest[i]));
      CO_ASSERT_TRUE(w.status.ok(), w.status);
      co_await pollux::sleep(absl::Milliseconds(1));  // let the server see each byte alone
    }
    HttpResponseReader reader(*stream);
    absl::StatusOr<std::string> r = co_await reader.next_response();
    CO_ASSERT_TRUE(r.ok(), r.status());
    EXPECT_EQ(*r, kHelloResponse);
    EXPECT_TRUE(stream->shutdown_write().ok());
    absl::Status eof = co_await reader.expect_end_of_stream();
    EXPECT_TRUE(eof.ok()) << eof;
  });
}

TEST_F(HttpServiceTest, Http10KeepAliveStaysOpenAndSaysSo) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    HttpResponseReader reader(*stream);
    // What ab -k sends: HTTP/1.0 asking for keep-alive, one request at a time.
    for (int i = 0; i < 3; ++i) {
      net::WriteAllResult w = co_await stream->write_all(
          bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n"));
      CO_ASSERT_TRUE(w.status.ok(), w.status);
      absl::StatusOr<std::string> r = co_await reader.next_response();
      CO_ASSERT_TRUE(r.ok(), "request " << i << ": " << r.status());
      EXPECT_EQ(*r, kHelloKeepAliveResponse);
    }
    // A 1.0 request without keep-alive is answered, then the connection ends.
    net::WriteAllResult w = co_await stream->write_all(bytes("GET / HTTP/1.0\r\n\r\n"));
    CO_ASSERT_TRUE(w.status.ok(), w.status);
    absl::StatusOr<std::string> r = co_await reader.next_response();
    CO_ASSERT_TRUE(r.ok(), r.status());
    EXPECT_EQ(*r, kHelloCloseResponse);
    absl::Status eof = co_await reader.expect_end_of_stream();
    EXPECT_TRUE(eof.ok()) << eof;
  });
}

TEST_F(HttpServiceTest, ConnectionCloseGetsTheResponseThenEndOfStream) {
  with_server([](SocketAddr addr) -> Task<void> {
    co_await expect_answer_then_close(addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
                                      kHelloCloseResponse);
    // Any case; requests pipelined after it are not answered.
    co_await expect_answer_then_close(
        addr, "GET / HTTP/1.1\r\nHost: a\r\nconnection: Close\r\n\r\n" + std::string(kHelloRequest),
        kHelloCloseResponse);
  });
}

TEST_F(HttpServiceTest, AnswersEarlierPipelinedRequestsBeforeClosing) {
  with_server([](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    const std::string requests = repeat(kHelloRequest, 2) + "BROKEN\r\n\r\n";
    net::WriteAllResult w = co_await stream->write_all(bytes(requests));
    CO_ASSERT_TRUE(w.status.ok(), w.status);
    HttpResponseReader reader(*stream);
    for (std::string_view expected : {kHelloResponse, kHelloResponse, kBadRequestResponse}) {
      absl::StatusOr<std::string> r = co_await reader.next_response();
      CO_ASSERT_TRUE(r.ok(), r.status());
      EXPECT_EQ(*r, expected);
    }
    absl::Status eof = co_await reader.expect_end_of_stream();
    EXPECT_TRUE(eof.ok()) << eof;
  });
}

TEST_F(HttpServiceTest, MalformedRequestLineGets400ThenEndOfStream) {
  with_server([](SocketAddr addr) -> Task<void> {
    co_await expect_answer_then_close(addr, "HELLO\r\n\r\n", kBadRequestResponse);
    co_await expect_answer_then_close(addr, "GET / FTP/1.1\r\nHost: a\r\n\r\n",
                                      kBadRequestResponse);
  });
}

TEST_F(HttpServiceTest, OversizedHeadGets431ThenEndOfStream) {
  with_server([](SocketAddr addr) -> Task<void> {
    // Complete but too long, and too long before its end has even arrived.
    co_await expect_answer_then_close(addr, request_of_length(kMaxHeadBytes + 100),
                                      kHeaderTooLargeResponse);
    co_await expect_answer_then_close(addr, "GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'b'),
                                      kHeaderTooLargeResponse);
    // The largest head allowed is still served.
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    net::WriteAllResult w = co_await stream->write_all(bytes(request_of_length(kMaxHeadBytes)));
    CO_ASSERT_TRUE(w.status.ok(), w.status);
    HttpResponseReader reader(*stream);
    absl::StatusOr<std::string> r = co_await reader.next_response();
    CO_ASSERT_TRUE(r.ok(), r.status());
    EXPECT_EQ(*r, kHelloResponse);
  });
}

TEST_F(HttpServiceTest, FiftyConcurrentClientsTwentyRequestsEach) {
  constexpr int kClients = 50;
  constexpr int kRequests = 20;
  with_server([](SocketAddr addr) -> Task<void> {
    auto exact = std::make_shared<std::atomic<int>>(0);  // clients run on every worker
    std::vector<JoinHandle<void>> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.push_back(pollux::spawn([addr, exact]() -> Task<void> {
        std::optional<TcpStream> stream = co_await connect_to(addr);
        if (!stream) co_return;
        for (int i = 0; i < kRequests; ++i) {
          absl::StatusOr<std::string> r = co_await http_get(*stream, 1);
          CO_ASSERT_TRUE(r.ok(), r.status());
          if (*r == kHelloResponse) ++*exact;
        }
      }));
    }
    for (JoinHandle<void>& client : clients) {
      auto result = co_await std::move(client);
      EXPECT_TRUE(result.ok());
    }
    EXPECT_EQ(exact->load(), kClients * kRequests);
  });
}

}  // namespace
}  // namespace pollux::examples::http
