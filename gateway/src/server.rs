//! The gateway's HTTP server: it accepts connections and serves them with hyper under
//! limits no client can exceed, so a crowd or an abuser cannot starve everyone else.
//! Limits and defaults: `docs/gateway.md`, "Limits".
//!
//! Invariants:
//! - at most `max_connections` connections are open (refusals included); further ones
//!   wait in the listen backlog until one closes;
//! - one client (an IPv4 address, or an IPv6 /64, which one subscriber usually holds)
//!   has at most `client_connections` of them open; one more is answered `429` with
//!   `Retry-After` and closed;
//! - a connection must deliver a request's head within `header_timeout` of being
//!   accepted or of its previous response, so idle and slowly trickling sockets
//!   (slowloris) are closed; a response write that makes no progress for
//!   `write_timeout` ends the connection, so a client that stops reading cannot pin a
//!   segment in memory;
//! - each client's requests are metered by a token bucket (`client_rate` a second,
//!   `client_burst` at once); a request over it gets `429` with the seconds until the
//!   next token, and costs nothing else.

use std::{
    fmt,
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use mosaic_wire::limit::{Buckets, Rate, Slots};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::Sleep,
};
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::metrics::Metrics;

/// What one client, and all of them together, may hold of the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeLimits {
    /// Connections open at once, from everyone.
    pub max_connections: usize,
    /// Connections one client may have open at once; `0`: no limit.
    pub client_connections: usize,
    /// Requests a second one client may make, sustained; `0.0`: no limit.
    pub client_rate: f64,
    /// Requests one client may make at once above the sustained rate.
    pub client_burst: u32,
    /// How long a connection may take to send a request's head, counted from its
    /// opening or from its previous response (idle keep-alive included).
    pub header_timeout: Duration,
    /// How long writing a response may make no progress before the connection ends.
    pub write_timeout: Duration,
}

impl Default for ServeLimits {
    /// Room for many browsers behind one address (a browser opens 6 connections to a
    /// host; a page of a static site asks for tens of files at once; a video seeks
    /// with a few ranges a second), none for one client to take the gateway.
    fn default() -> Self {
        Self {
            max_connections: 4096,
            client_connections: 64,
            client_rate: 100.0,
            client_burst: 400,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Uploads (of either kind) one client may have in progress.
pub(crate) const UPLOADS_PER_CLIENT: usize = 2;

/// Who a client is, for its limits: its IPv4 address, or the /64 prefix of its IPv6
/// address (one subscriber is usually given a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4(Ipv4Addr),
    V6(u64),
}

impl ClientKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => ClientKey::V4(a),
            IpAddr::V6(a) => ClientKey::V6((u128::from(a) >> 64) as u64),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::V4(a) => write!(f, "{a}"),
            ClientKey::V6(p) => {
                let a = std::net::Ipv6Addr::from(u128::from(*p) << 64);
                write!(f, "{a}/64")
            }
        }
    }
}

/// The peer of the connection a request arrived on (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Clients the gateway meters: connections held, and request rates of the
/// [`REMEMBERED`] clients seen last.
#[derive(Debug)]
pub(crate) struct Clients {
    limits: ServeLimits,
    connections: Slots<ClientKey>,
    requests: Buckets<ClientKey>,
    /// Uploads in progress (see [`crate::routes::upload`]).
    pub(crate) uploads: Slots<ClientKey>,
}

/// Clients whose request rate is remembered.
const REMEMBERED: usize = 65_536;

impl Clients {
    pub(crate) fn new(limits: ServeLimits) -> Self {
        Self {
            connections: Slots::new(limits.client_connections),
            requests: Buckets::new(
                Rate {
                    per_second: limits.client_rate,
                    burst: limits.client_burst,
                },
                REMEMBERED,
            ),
            uploads: Slots::new(UPLOADS_PER_CLIENT),
            limits,
        }
    }

    /// Takes a token from the client's bucket, or says how long until one is back.
    pub(crate) fn admit(&self, key: ClientKey, now: Instant) -> Result<(), Duration> {
        self.requests.admit(key, 1, now)
    }
}

/// Serves `app` on `listener` under `clients`' limits until `stop` turns true; then
/// stops accepting and ends every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    clients: Arc<Clients>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = clients.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // A request head larger than this is refused (431); it also bounds what one
        // connection buffers.
        .max_buf_size(64 * 1024);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close
                    // rather than spin.
                    warn!("cannot accept an HTTP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let key = ClientKey::of(peer.ip());
        let Some(slot) = clients.connections.take(key) else {
            metrics.refused("client_connections");
            debug!(client = %key, "refused a connection: the client holds {} already", limits.client_connections);
            tokio::spawn(refuse(stream, permit, limits.client_connections));
            continue;
        };
        metrics.connection_opened();
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, limits.write_timeout)),
            service,
        );
        let mut stop = stop.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            tokio::select! {
                r = connection => if let Err(e) = r {
                    debug!(%peer, "HTTP connection ended: {e}");
                },
                _ = stop.changed() => {}
            }
            metrics.connection_closed();
        });
    }
}

/// Answers a connection over its client's limit with `429` and closes it. The request
/// is read (and dropped) for a moment after the answer, so that closing does not reset
/// the connection before the client has read why.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit, limit: usize) {
    let body = format!(
        "too many connections from your address: at most {limit} at once; close some and try again\n"
    );
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// A stream whose writes fail with `TimedOut` once one has made no progress for the
/// limit (reads are bounded by the header and body timeouts instead).
#[derive(Debug)]
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes a write's outcome on, arming the deadline while it is pending and
    /// disarming it on progress.
    fn timed<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {limit:?}"),
                )))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.timed(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_addresses_or_ipv6_prefixes() {
        let a = ClientKey::of("2001:db8:1:2::5".parse().expect("ip"));
        let b = ClientKey::of("2001:db8:1:2:ffff::9".parse().expect("ip"));
        let c = ClientKey::of("2001:db8:1:3::5".parse().expect("ip"));
        assert_eq!(a, b, "one /64 is one client");
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = ClientKey::of("::ffff:10.0.0.1".parse().expect("ip"));
        assert_eq!(mapped, ClientKey::of("10.0.0.1".parse().expect("ip")));
    }
}
