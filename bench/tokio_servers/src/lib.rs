//! What tokio_echo_server and tokio_http_server share: their flags, the
//! listening socket with the line bench/compare.sh waits for, and the accept
//! loop spawning one task per connection.
//!
//! Flags (the subset of pollux's examples/server_flags.h that compare.sh
//! passes in one-thread mode): `--port=N` (0 picks a free port),
//! `--addr=IP` (default 127.0.0.1), `--threads=1` and
//! `--flavour=current_thread` (accepted, as the only values: these servers
//! are the current-thread runtime by design, the counterpart of pollux's
//! default flavour). Anything else exits 2 with a message, so a threads-mode
//! run cannot silently measure one thread against N.
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub struct Flags {
    pub addr: SocketAddr,
}

/// Parses the process arguments; on a bad one prints why and exits 2.
pub fn parse_flags(default_port: u16) -> Flags {
    let program = std::env::args().next().unwrap_or_else(|| "server".into());
    let bad = |why: String| -> ! {
        eprintln!("{program}: {why}");
        std::process::exit(2);
    };
    let mut ip = String::from("127.0.0.1");
    let mut port = default_port;
    for arg in std::env::args().skip(1) {
        let (name, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        match name {
            "--port" => port = value.parse().unwrap_or_else(|_| bad(format!("bad {arg}"))),
            "--addr" => ip = value.to_string(),
            "--threads" if value == "1" => {}
            "--flavour" if value == "current_thread" => {}
            _ => bad(format!(
                "unsupported argument '{arg}' (only --port=N, --addr=IP, --threads=1, \
                 --flavour=current_thread: a current-thread tokio server)"
            )),
        }
    }
    let addr = format!("{ip}:{port}")
        .parse()
        .or_else(|_| format!("[{ip}]:{port}").parse())
        .unwrap_or_else(|_| bad(format!("bad --addr={ip}")));
    Flags { addr }
}

/// Binds `flags.addr`, prints `listening on ADDR:PORT` (the line scripts
/// wait for; Rust's stdout is line-buffered, so it is out before accepting
/// starts), then accepts forever, serving each connection on a task of its
/// own with TCP_NODELAY set, as pollux's servers do (a response split over
/// two writes must not wait for the client's delayed ACK).
pub async fn serve<F, Fut>(flags: Flags, handler: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind(flags.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                stream.set_nodelay(true)?;
                // A connection's I/O error ends that connection only.
                tokio::spawn(handler(stream));
            }
            // Out of fds or memory: give connections a moment to close (as
            // pollux's accept loop does); anything else (ECONNABORTED)
            // concerns that one connection.
            Err(e) if e.raw_os_error().map_or(false, is_exhaustion) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {}
        }
    }
}

fn is_exhaustion(errno: i32) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(errno, 24 | 23 | 105 | 12)
}
