//! Serving the API over TCP with connections a handler can cut.
//!
//! A server blocked writing to a peer that does not read never polls the
//! response body again, so a slow event-stream client cannot be dropped by
//! ending its body. [`serve`] wraps every accepted socket in a [`Conn`]
//! whose reads and writes fail once its [`Cut`] is triggered (waking any
//! pending write), which makes hyper drop the connection and close the
//! socket. Handlers reach their connection's `Cut` (and the peer address)
//! through the [`Client`] extractor.
//!
//! With TLS ([`serve_tls`]) a background task accepts sockets and runs each
//! handshake in a task of its own, bounded by [`HANDSHAKE_TIMEOUT`]; only
//! finished handshakes reach the server, so a client that stalls its
//! handshake holds up nobody else. The cut works the same on TLS
//! connections (it wraps the TLS stream).

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
use tokio::sync::mpsc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// Longest time a TLS handshake may take before the socket is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const HANDSHAKE_BACKLOG: usize = 128;

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

/// A socket, plain or TLS.
#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $io:ident => $e:expr) => {
        match $self.get_mut() {
            Io::Plain($io) => {
                let $io = Pin::new($io);
                $e
            }
            Io::Tls($io) => {
                let $io = Pin::new($io.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(io) => io.is_write_vectored(),
            Io::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, io => io.poll_shutdown(cx))
    }
}

/// An accepted connection (TCP, or TLS over TCP) that can be [`Cut`].
#[derive(Debug)]
pub struct Conn {
    io: Io,
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
pub struct ApiListener(Accepting);

#[derive(Debug)]
enum Accepting {
    Plain(TcpListener),
    /// Handshakes done by [`accept_tls`] and its tasks.
    Tls {
        local: io::Result<SocketAddr>,
        ready: mpsc::Receiver<(Conn, SocketAddr)>,
        acceptor: tokio::task::JoinHandle<()>,
    },
}

impl Drop for ApiListener {
    fn drop(&mut self) {
        if let Accepting::Tls { acceptor, .. } = &self.0 {
            acceptor.abort();
        }
    }
}

async fn accept_tcp(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((io, addr)) => {
                let _ = io.set_nodelay(true);
                return (io, addr);
            }
            Err(e) => {
                // Typically out of file descriptors: wait, then retry.
                tracing::warn!(error = %e, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Accepts sockets and hands each to a handshake task; finished
/// connections go to `ready`.
async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    ready: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        let (tcp, addr) = accept_tcp(&listener).await;
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let conn = Conn { io: Io::Tls(Box::new(tls)), cut: Cut::default() };
                    let _ = ready.send((conn, addr)).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "A TLS handshake failed.");
                }
                Err(_) => tracing::debug!(peer = %addr, "A TLS handshake timed out."),
            }
        });
    }
}

impl ApiListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener) -> Self {
        ApiListener(Accepting::Plain(listener))
    }

    /// Wraps a bound listener whose connections speak TLS (must be called
    /// inside a tokio runtime: the handshakes run in tasks).
    pub fn with_tls(listener: TcpListener, config: Arc<ServerConfig>) -> Self {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(HANDSHAKE_BACKLOG);
        let acceptor =
            tokio::spawn(accept_tls(listener, tokio_rustls::TlsAcceptor::from(config), tx));
        ApiListener(Accepting::Tls { local, ready, acceptor })
    }
}

impl Listener for ApiListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match &mut self.0 {
            Accepting::Plain(listener) => {
                let (io, addr) = accept_tcp(listener).await;
                (Conn { io: Io::Plain(io), cut: Cut::default() }, addr)
            }
            Accepting::Tls { ready, .. } => match ready.recv().await {
                Some(conn) => conn,
                // The acceptor task never ends on its own.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.0 {
            Accepting::Plain(listener) => listener.local_addr(),
            Accepting::Tls { local, .. } => match local {
                Ok(a) => Ok(*a),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            },
        }
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
    serve_tls(listener, router, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = match tls {
        Some(config) => ApiListener::with_tls(listener, config),
        None => ApiListener::new(listener),
    };
    axum::serve(listener, router.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}
