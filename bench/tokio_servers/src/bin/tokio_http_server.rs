//! tokio_http_server: tokio's counterpart of pollux's examples/http_hello
//! for bench/compare.sh. An HTTP/1.1 server answering every request with
//! "Hello, World!": keep-alive, pipelining (every complete head in one read
//! is answered, the responses go out in one write), one task per connection
//! on a current-thread runtime. The bytes and the judging of a request head
//! are examples/http_wire.{h,cc}'s (kHelloResponse, inspect_request_head),
//! so both servers do the same parsing work per message and loadgen can
//! compare every response byte for byte. Flags: src/lib.rs.
//!
//! Not here (pollux's server has them, the benchmark never reaches them):
//! header, idle and write timeouts, GET /metrics, graceful shutdown.
use memchr::memmem;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Connection: close\r\n\r\nHello, World!";
const HELLO_KEEP_ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Connection: keep-alive\r\n\r\nHello, World!";
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const HEADER_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Length: 0\r\nConnection: close\r\n\r\n";

/// Bytes read at a time (pollux's kReadBytes). Larger than MAX_HEAD_BYTES,
/// so a buffer holding an unfinished head always has room for more.
const READ_BYTES: usize = 16 * 1024;
/// A longer head without its blank line is answered 431 and closed.
const MAX_HEAD_BYTES: usize = 8192;
/// Responses built before they are written (pollux's kMaxOutputBytes): a
/// client pipelining without reading is held back by its own socket buffer.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
enum Verdict {
    KeepAlive,      // HTTP/1.1 persisting
    KeepAliveAsked, // HTTP/1.0 with Connection: keep-alive
    Close,
    Bad,
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !last.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// Judges one complete head (request line, header lines, blank line) as
/// pollux's inspect_request_head does.
fn inspect(head: &[u8]) -> Verdict {
    let Some(line_end) = memmem::find(head, b"\r\n") else { return Verdict::Bad };
    let line = &head[..line_end];
    // METHOD SP target SP HTTP/1.x
    let mut i = line.iter().take_while(|&&c| is_token(c)).count();
    if i == 0 || i == line.len() || line[i] != b' ' {
        return Verdict::Bad;
    }
    i += 1;
    let target = line[i..].iter().take_while(|&&c| c > b' ' && c != 0x7f).count();
    i += target;
    if target == 0 || i == line.len() || line[i] != b' ' {
        return Verdict::Bad;
    }
    let version = &line[i + 1..];
    if version.len() != 8 || !version.starts_with(b"HTTP/1.") || !version[7].is_ascii_digit() {
        return Verdict::Bad;
    }
    let mut keep_alive = version[7] != b'0';
    let mut close = false;
    let mut rest = &head[line_end + 2..];
    loop {
        let Some(end) = memmem::find(rest, b"\r\n") else { return Verdict::Bad };
        let header = &rest[..end];
        rest = &rest[end + 2..];
        if header.is_empty() {
            break; // the blank line ending the head
        }
        let Some(colon) = header.iter().position(|&c| c == b':') else { return Verdict::Bad };
        if colon == 0 || !header[..colon].iter().all(|&c| is_token(c)) {
            return Verdict::Bad;
        }
        if header[..colon].eq_ignore_ascii_case(b"connection") {
            for token in header[colon + 1..].split(|&c| c == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if close || !keep_alive {
        Verdict::Close
    } else if version[7] == b'0' {
        Verdict::KeepAliveAsked
    } else {
        Verdict::KeepAlive
    }
}

async fn serve_http(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; READ_BYTES];
    let mut filled = 0; // buf[..filled]: received, not answered (a partial head)
    let mut out = Vec::new();
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut consumed = 0;
        let mut close = false;
        while !close {
            let rest = &buf[consumed..filled];
            let head_len = memmem::find(rest, b"\r\n\r\n").map(|i| i + 4);
            if head_len.unwrap_or(rest.len()) > MAX_HEAD_BYTES {
                out.extend_from_slice(HEADER_TOO_LARGE);
                close = true;
                break;
            }
            let Some(head_len) = head_len else { break }; // wait for the rest of the head
            out.extend_from_slice(match inspect(&rest[..head_len]) {
                Verdict::KeepAlive => HELLO,
                Verdict::KeepAliveAsked => HELLO_KEEP_ALIVE,
                Verdict::Close => {
                    close = true;
                    HELLO_CLOSE
                }
                Verdict::Bad => {
                    close = true;
                    BAD_REQUEST
                }
            });
            consumed += head_len;
            if out.len() >= MAX_OUTPUT_BYTES {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            return close_gracefully(stream, buf).await;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
}

/// Ends the stream after its last response: shuts down writing, then reads
/// (up to 64 KiB, for at most 1 s) what the client still sends, so closing
/// with unread bytes does not reset the connection before the client has
/// read that response.
async fn close_gracefully(mut stream: TcpStream, mut buf: Vec<u8>) -> std::io::Result<()> {
    stream.shutdown().await?;
    let drain = async {
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tokio_servers::serve(tokio_servers::parse_flags(8080), serve_http).await
}

// `cargo test --release --offline` here (not run by CI, which has no cargo
// step): the judging of heads, and one connection end to end on 127.0.0.1.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn judges_heads_as_pollux_does() {
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Verdict::KeepAlive);
        assert_eq!(inspect(b"GET / HTTP/1.0\r\n\r\n"), Verdict::Close);
        assert_eq!(inspect(b"GET / HTTP/1.0\r\nconnection:  Keep-Alive \r\n\r\n"), Verdict::KeepAliveAsked);
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nConnection: keep-alive, CLOSE\r\n\r\n"), Verdict::Close);
        assert_eq!(inspect(b"GET /  HTTP/1.1\r\n\r\n"), Verdict::Bad);
        assert_eq!(inspect(b"GET / HTTP/2.0\r\n\r\n"), Verdict::Bad);
        assert_eq!(inspect(b"G(T / HTTP/1.1\r\n\r\n"), Verdict::Bad);
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), Verdict::Bad);
        assert_eq!(inspect(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"), Verdict::Bad);
    }

    async fn exchange(chunks: &[&[u8]]) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve_http(stream).await
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        for chunk in chunks {
            client.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await; // separate reads
        }
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut got))
            .await
            .expect("the server never closed")
            .unwrap();
        server.await.unwrap().unwrap();
        got
    }

    #[tokio::test]
    async fn answers_pipelined_and_split_heads_in_order() {
        let got = exchange(&[
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHo",
            b"st: x\r\n\r",
            b"\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ])
        .await;
        assert_eq!(got, [HELLO, HELLO, HELLO_KEEP_ALIVE].concat());
    }

    #[tokio::test]
    async fn closes_after_close_bad_or_oversized() {
        let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(exchange(&[close]).await, HELLO_CLOSE);
        assert_eq!(exchange(&[b"GET / HTTP/1.1\r\n\r\nBAD\r\n\r\n"]).await, [HELLO, BAD_REQUEST].concat());
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(exchange(&[&long]).await, HEADER_TOO_LARGE);
    }
}
