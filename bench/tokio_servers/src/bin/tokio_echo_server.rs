//! tokio_echo_server: tokio's counterpart of pollux's examples/echo_server
//! for bench/compare.sh. Every byte a client sends comes back, in order; one
//! task per connection on a current-thread runtime, each reading into its
//! own 16 KiB buffer (pollux's kEchoBufferBytes) and writing back exactly
//! what one read returned. Flags and the "listening on" line: src/lib.rs.
//!
//! Not here (pollux's server has them, the benchmark never reaches them):
//! idle and write timeouts, graceful shutdown on SIGTERM (compare.sh's kill
//! ends this one at once).
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BUFFER_BYTES: usize = 16 * 1024;

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; BUFFER_BYTES];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tokio_servers::serve(tokio_servers::parse_flags(7000), echo).await
}

// `cargo test --release --offline` here (not run by CI, which has no cargo
// step): more than one buffer's worth comes back, in order.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn echoes_every_byte_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            echo(stream).await
        });
        let sent: Vec<u8> = (0..5 * BUFFER_BYTES as u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = client.split();
        let mut got = Vec::new();
        let write = async {
            wr.write_all(&sent).await.unwrap();
            wr.shutdown().await.unwrap();
        };
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), rd.read_to_end(&mut got));
        let ((), read) = tokio::join!(write, read);
        read.expect("the echo never ended").unwrap();
        assert!(got == sent, "echoed {} bytes, not the {} sent", got.len(), sent.len());
        server.await.unwrap().unwrap();
    }
}
