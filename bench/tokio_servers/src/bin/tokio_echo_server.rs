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
