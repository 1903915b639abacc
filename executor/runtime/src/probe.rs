//! The I/O of health-check probes: what one [`Probe`] does, bounded by its
//! timeout. The core decides when to probe and what a result means.
//!
//! - HTTP: `GET <path>` to `127.0.0.1:<port>` (`[::1]` for IPv6) over a
//!   fresh connection; only the status line is read. 200-399 is healthy,
//!   and 100-199 with `ignore_1xx`.
//! - TCP: a connection to `127.0.0.1:<port>` opens.
//! - COMMAND: [`TaskControl::exec`] (the sandbox for a process task, the
//!   container for a Docker task) exits with 0.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use exec_core::{Probe, ProbeOutcome, signal_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{BoxFuture, Command, ExitStatus, TaskControl};

/// The longest status line read from an HTTP answer.
const MAX_STATUS_LINE: usize = 4096;

/// Runs `probe` against a task, within `timeout`. `control` runs COMMAND
/// probes; without it (the task is gone) they fail.
pub fn run(
    probe: Probe,
    control: Option<Arc<dyn TaskControl>>,
    timeout: Duration,
) -> BoxFuture<ProbeOutcome> {
    Box::pin(async move {
        let attempt = async {
            match probe {
                Probe::Http { port, path, ipv6, ignore_1xx } => {
                    http(address(ipv6, port), &path, ignore_1xx).await
                }
                Probe::Tcp { port, ipv6 } => tcp(address(ipv6, port)).await,
                Probe::Command { command, env } => self::command(control, &command, &env).await,
            }
        };
        tokio::time::timeout(timeout, attempt).await.unwrap_or(ProbeOutcome::TimedOut)
    })
}

fn address(ipv6: bool, port: u16) -> SocketAddr {
    let ip = if ipv6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
    SocketAddr::new(ip, port)
}

async fn http(addr: SocketAddr, path: &str, ignore_1xx: bool) -> ProbeOutcome {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::Unhealthy(format!("cannot connect to {addr}: {e}")),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: drover-executor\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return ProbeOutcome::Unhealthy(format!("cannot send the request: {e}"));
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_STATUS_LINE {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return ProbeOutcome::Unhealthy(format!("cannot read the answer: {e}")),
        }
    }
    match status_code(&head) {
        Some(code) => judge_status(code, ignore_1xx),
        None if head.is_empty() => {
            ProbeOutcome::Unhealthy("the connection closed without an answer".to_owned())
        }
        None => ProbeOutcome::Unhealthy("the answer is not HTTP".to_owned()),
    }
}

/// The status code of an HTTP/1.x status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\r' || *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next().filter(|c| c.len() == 3)?.parse().ok()
}

/// Marathon's verdict on an HTTP status code.
fn judge_status(code: u16, ignore_1xx: bool) -> ProbeOutcome {
    match code {
        200..=399 => ProbeOutcome::Healthy,
        100..=199 if ignore_1xx => ProbeOutcome::Healthy,
        _ => ProbeOutcome::Unhealthy(format!("HTTP {code}")),
    }
}

async fn tcp(addr: SocketAddr) -> ProbeOutcome {
    match TcpStream::connect(addr).await {
        Ok(_) => ProbeOutcome::Healthy,
        Err(e) => ProbeOutcome::Unhealthy(format!("cannot connect to {addr}: {e}")),
    }
}

async fn command(
    control: Option<Arc<dyn TaskControl>>,
    command: &Command,
    env: &BTreeMap<String, String>,
) -> ProbeOutcome {
    let Some(control) = control else {
        return ProbeOutcome::Unhealthy("the task is not running".to_owned());
    };
    match control.exec(command, env).await {
        Ok(out) if out.status.success() => ProbeOutcome::Healthy,
        Ok(out) => {
            let status = match out.status {
                ExitStatus::Code(code) => format!("exit status {code}"),
                ExitStatus::Signal(sig) => format!("terminated by signal {}", signal_name(sig)),
            };
            if out.output.is_empty() {
                ProbeOutcome::Unhealthy(status)
            } else {
                ProbeOutcome::Unhealthy(format!("{status}: {}", out.output))
            }
        }
        Err(e) => ProbeOutcome::Unhealthy(crate::error_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn status_lines_are_parsed_and_judged_like_marathon() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 503 Unavailable\r\nx"), Some(503));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(judge_status(200, false), ProbeOutcome::Healthy);
        assert_eq!(judge_status(399, false), ProbeOutcome::Healthy);
        assert_eq!(judge_status(404, false), ProbeOutcome::Unhealthy("HTTP 404".into()));
        assert_eq!(judge_status(101, false), ProbeOutcome::Unhealthy("HTTP 101".into()));
        assert_eq!(judge_status(101, true), ProbeOutcome::Healthy);
        assert_eq!(judge_status(500, true), ProbeOutcome::Unhealthy("HTTP 500".into()));
    }

    /// Serves one canned answer per connection; returns the port.
    async fn serve(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            }
        });
        port
    }

    fn http_probe(port: u16) -> Probe {
        Probe::Http { port, path: "/health".into(), ipv6: false, ignore_1xx: false }
    }

    #[tokio::test]
    async fn http_and_tcp_probes_reach_the_loopback_address() {
        let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let sick = serve(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let garbage = serve(b"hello\r\n").await;
        let second = Duration::from_secs(1);
        assert_eq!(run(http_probe(ok), None, second).await, ProbeOutcome::Healthy);
        assert_eq!(
            run(http_probe(sick), None, second).await,
            ProbeOutcome::Unhealthy("HTTP 503".into())
        );
        assert_eq!(
            run(http_probe(garbage), None, second).await,
            ProbeOutcome::Unhealthy("the answer is not HTTP".into())
        );
        assert_eq!(
            run(Probe::Tcp { port: ok, ipv6: false }, None, second).await,
            ProbeOutcome::Healthy
        );
        // A port nobody listens on: bind one, then free it.
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let ProbeOutcome::Unhealthy(cause) = run(http_probe(free), None, second).await else {
            panic!("a closed port is unhealthy")
        };
        assert!(cause.starts_with(&format!("cannot connect to 127.0.0.1:{free}")), "{cause}");
        assert!(matches!(
            run(Probe::Tcp { port: free, ipv6: false }, None, second).await,
            ProbeOutcome::Unhealthy(_)
        ));
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = run(http_probe(port), None, Duration::from_millis(200)).await;
        assert_eq!(outcome, ProbeOutcome::TimedOut);
        drop(listener);
    }

    #[tokio::test]
    async fn command_probes_need_the_task() {
        let probe = Probe::Command { command: Command::Shell("true".into()), env: BTreeMap::new() };
        assert_eq!(
            run(probe, None, Duration::from_secs(1)).await,
            ProbeOutcome::Unhealthy("the task is not running".into())
        );
    }
}
