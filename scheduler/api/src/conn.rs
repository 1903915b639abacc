//! Serving the API over TCP with connections a handler can cut.
//!
//! A server blocked writing to a peer that does not read never polls the
//! response body again, so a slow event-stream client cannot be dropped by
//! ending its body. [`serve`] wraps every accepted socket in a [`Conn`]
//! whose reads and writes fail once its [`Cut`] is triggered (waking any
//! pending write), which makes hyper drop the connection and close the
//! socket. Handlers reach their connection's `Cut` (and the peer address)
//! through the [`Client`] extractor.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct CutState {
    cut: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
}

/// Closes one connection from the server side, even while it is blocked.
#[derive(Debug, Clone, Default)]
pub struct Cut(Arc<CutState>);

impl Cut {
    /// Makes every further read and write of the connection fail.
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::SeqCst);
        self.0.read.wake();
        self.0.write.wake();
    }

    /// True once [`cut`](Self::cut) was called.
    pub fn is_cut(&self) -> bool {
        self.0.cut.load(Ordering::SeqCst)
    }
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut by the server")
}

/// An accepted TCP connection that can be [`Cut`].
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    cut: Cut,
}

impl Conn {
    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> io::Result<()> {
        // Register before checking, so a cut in between still wakes us.
        waker.register(cx.waker());
        if self.cut.is_cut() { Err(aborted()) } else { Ok(()) }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(&this.cut.0.read, cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(&this.cut.0.write, cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(&this.cut.0.write, cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(&this.cut.0.write, cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections are [`Conn`]s.
#[derive(Debug)]
pub struct ApiListener(TcpListener);

impl ApiListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener) -> Self {
        ApiListener(listener)
    }
}

impl Listener for ApiListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    return (Conn { io, cut: Cut::default() }, addr);
                }
                Err(e) => {
                    // Typically out of file descriptors: wait, then retry.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// What the API knows about a connection's peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's address.
    pub addr: SocketAddr,
    /// Closes the connection.
    pub cut: Cut,
}

impl Connected<IncomingStream<'_, ApiListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ApiListener>) -> Self {
        Peer { addr: *stream.remote_addr(), cut: stream.io().cut.clone() }
    }
}

/// The sender of a request, as far as it is known (not at all in
/// socket-free tests).
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The peer address.
    pub addr: Option<SocketAddr>,
    /// Closes the connection, when served by [`serve`].
    pub cut: Option<Cut>,
}

impl Client {
    /// The peer's IP, or `""` when unknown.
    pub fn ip(&self) -> String {
        self.addr.map(|a| a.ip().to_string()).unwrap_or_default()
    }

    /// Closes the connection, if it can.
    pub fn cut(&self) {
        if let Some(cut) = &self.cut {
            cut.cut();
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<Peer>>() {
            return Ok(Client { addr: Some(peer.addr), cut: Some(peer.cut.clone()) });
        }
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        Ok(Client { addr, cut: None })
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// requests finish (call [`EventBus::close`](crate::events::EventBus::close)
/// first so event streams end).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(ApiListener::new(listener), router.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}
