//! The client itself: one iroh endpoint, one DHT node in client mode, a cache of live
//! connections and of the addresses nodes published, and a record of where its time
//! went ([`Timings`]). The operations live beside it: `put.rs`, `find.rs` and
//! `get.rs`, `blob.rs`, `pins.rs`. Addresses are looked up once per node and kept while
//! they work.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{Endpoint, EndpointId, SecretKey, endpoint::Connection};
use mosaic_codec::Hash;
use mosaic_wire::{
    dht::{PeerAddr, Routing, RoutingOptions},
    endpoint::{self, DialError, EndpointOptions, Route},
    proto,
    relay::RelayInfo,
    request::{self, Stat},
};
use tokio::sync::{OnceCell, watch};
use tracing::debug;

use crate::{
    ClientError,
    address_book::{self, Book},
    lookups::{Lookups, Proxy},
    timings::Timings,
};

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client's identity (storage nodes authorize by it).
    pub secret: SecretKey,
    /// UDP address to bind.
    pub bind: SocketAddr,
    /// DHT settings (client mode).
    pub routing: RoutingOptions,
    /// Relays to keep a home relay among (nodes serving one for the network).
    pub relays: Vec<RelayInfo>,
    /// Send everything through the home relay: peers never learn this client's address.
    pub relay_only: bool,
    /// How long dialing one node may take.
    pub connect_timeout: Duration,
    /// A fetch that delivers nothing for this long is abandoned for another holder.
    pub stall_timeout: Duration,
    /// Where to remember nodes' addresses between runs (`address_book.rs`); `None`
    /// keeps them for this client's life only.
    pub address_book: Option<PathBuf>,
}

/// A node that answered a `Stat`.
#[derive(Debug, Clone)]
pub struct StorageNode {
    /// Its identity.
    pub id: EndpointId,
    /// Round-trip time of the connection.
    pub rtt: Duration,
    /// Capacity in bytes.
    pub capacity: u64,
    /// Bytes used.
    pub used: u64,
    pub(crate) conn: Connection,
}

impl StorageNode {
    /// Bytes it says it has free (the real disk's free space bounds its capacity).
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// A Mosaic network client.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    routing: Arc<Lookups>,
    options: ClientOptions,
    conns: Mutex<HashMap<ConnKey, Slot<Connection>>>,
    dialer: Arc<Dialer>,
    /// Files' holders lately found (`Client::holders_of`, in `find.rs`).
    pub(crate) holders: Mutex<HashMap<Hash, (Instant, watch::Receiver<Holders>)>>,
    /// Blobs opened lately: a holder that served each and its proven size, so a
    /// gateway answering many ranges of one column looks it up once.
    pub(crate) blob_holders: Mutex<HashMap<Hash, (Instant, EndpointId, u64)>>,
    pub(crate) timings: Arc<Timings>,
}

/// A value made once, by whichever caller comes first; the others wait for it.
type Slot<T> = Arc<OnceCell<T>>;

/// A connection is to a node on one protocol (ALPN).
type ConnKey = (EndpointId, &'static [u8]);

/// What dialing needs, shared with the tasks that dial.
#[derive(Debug)]
struct Dialer {
    endpoint: Endpoint,
    routing: Arc<Lookups>,
    connect_timeout: Duration,
    addrs: Mutex<HashMap<EndpointId, Slot<PeerAddr>>>,
    /// Nodes that failed lately, and until when dials to them fail at once.
    backoff: Mutex<HashMap<EndpointId, Backoff>>,
    /// The address each node was last reached at in this run.
    proven: Mutex<HashMap<EndpointId, PeerAddr>>,
    /// Addresses proved by a handshake, for the address book.
    book: Mutex<Book>,
    timings: Arc<Timings>,
}

/// A node's failures in a row, and until when this client leaves it alone.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

/// The first pause after a node fails; each failure in a row doubles it, up to
/// [`BACKOFF_MAX`]. A success clears it. (libp2p waits 5 s + 1 s · tries², capped at
/// 5 min; a storage network has few nodes and each one's columns matter, so Mosaic
/// comes back sooner.)
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// The longest pause after failures.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Backoff {
    fn after(failures: u32, now: Instant) -> Self {
        let pause = BACKOFF_FIRST
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(BACKOFF_MAX);
        Self {
            failures,
            until: now + pause,
        }
    }
}

impl Dialer {
    /// Connects with the address known for `id`, else the one it publishes now. One
    /// lookup per node, however many dials want it at once. A node that failed lately
    /// fails at once ([`DialError::BackedOff`]).
    async fn dial(
        self: &Arc<Self>,
        id: EndpointId,
        alpn: &'static [u8],
    ) -> Result<Connection, DialError> {
        if let Some(e) = self.backed_off(id) {
            return Err(e);
        }
        let result = self.dial_now(id, alpn).await;
        match &result {
            Ok(_) => self.succeeded(id),
            Err(_) => self.failed(id),
        }
        result
    }

    async fn dial_now(
        self: &Arc<Self>,
        id: EndpointId,
        alpn: &'static [u8],
    ) -> Result<Connection, DialError> {
        let cell = self.addr_cell(id);
        let known = cell.initialized();
        let addrs = cell.get_or_try_init(|| self.resolve(id)).await?.clone();
        match self.connect(id, &addrs, alpn).await {
            Err(e @ DialError::Timeout { .. }) if known && self.proven(id, &addrs) => {
                // An address that worked in this run and no longer answers is most often
                // a node that is down or frozen, and looking it up again would add a DHT
                // lookup to every such failure: the caller goes on without it now, and
                // the address is refreshed in the background for the next dial (the
                // node may have moved). An address remembered from an earlier run is
                // looked up again at once, below: it is the likelier to be stale.
                self.forget_addr(id, &cell);
                let dialer = self.clone();
                tokio::spawn(async move {
                    let cell = dialer.addr_cell(id);
                    let _ = cell.get_or_try_init(|| dialer.resolve(id)).await;
                });
                Err(e)
            }
            Err(e) if known => {
                // Refused outright: the node may have moved since. Look it up again,
                // and try again only if it now publishes other addresses.
                self.forget_addr(id, &cell);
                let cell = self.addr_cell(id);
                let fresh = cell.get_or_try_init(|| self.resolve(id)).await?.clone();
                if fresh == addrs {
                    return Err(e);
                }
                self.connect(id, &fresh, alpn).await
            }
            result => result,
        }
    }

    /// Whether `addrs` connected to `id` in this run.
    fn proven(&self, id: EndpointId, addrs: &PeerAddr) -> bool {
        self.proven
            .lock()
            .expect("not poisoned")
            .get(&id)
            .is_some_and(|a| a == addrs)
    }

    /// The error a dial to `id` fails with now, if it is backed off.
    fn backed_off(&self, id: EndpointId) -> Option<DialError> {
        let backoff = self
            .backoff
            .lock()
            .expect("not poisoned")
            .get(&id)
            .copied()?;
        let wait = backoff.until.checked_duration_since(Instant::now())?;
        Some(DialError::BackedOff {
            node: id,
            failures: backoff.failures,
            wait,
        })
    }

    fn succeeded(&self, id: EndpointId) {
        self.backoff.lock().expect("not poisoned").remove(&id);
    }

    /// Records a failure of `id`: the next dials within its pause fail at once.
    fn failed(&self, id: EndpointId) {
        let mut backoff = self.backoff.lock().expect("not poisoned");
        let failures = backoff.get(&id).map_or(0, |b| b.failures) + 1;
        backoff.insert(id, Backoff::after(failures, Instant::now()));
    }

    fn addr_cell(&self, id: EndpointId) -> Slot<PeerAddr> {
        self.addrs
            .lock()
            .expect("not poisoned")
            .entry(id)
            .or_default()
            .clone()
    }

    fn forget_addr(&self, id: EndpointId, stale: &Slot<PeerAddr>) {
        let mut addrs = self.addrs.lock().expect("not poisoned");
        if addrs.get(&id).is_some_and(|c| Arc::ptr_eq(c, stale)) {
            addrs.remove(&id);
        }
    }

    /// Looks up the addresses `id` published; none is an error.
    async fn resolve(&self, id: EndpointId) -> Result<PeerAddr, DialError> {
        let started = Instant::now();
        let found = self.routing.resolve(&id).await;
        let what = format!("dht lookup: address of {}", id.fmt_short());
        match found {
            Ok(addr) if addr.is_empty() => {
                self.timings.record(what, started, "no address record");
                Err(DialError::NoAddress { node: id })
            }
            Ok(addr) => {
                let relay = match &addr.relay {
                    Some(r) => format!(", relay {}", r.url),
                    None => String::new(),
                };
                self.timings.record(
                    what,
                    started,
                    format!("{} addresses{relay}", addr.direct.len()),
                );
                Ok(addr)
            }
            Err(source) => {
                self.timings.record(what, started, source.to_string());
                Err(DialError::Resolve { node: id, source })
            }
        }
    }

    async fn connect(
        &self,
        id: EndpointId,
        addr: &PeerAddr,
        alpn: &'static [u8],
    ) -> Result<Connection, DialError> {
        let started = Instant::now();
        let result = endpoint::connect(
            &self.endpoint,
            &self.routing.options().network,
            id,
            addr,
            alpn,
            self.connect_timeout,
        )
        .await;
        if result.is_ok() {
            self.proven
                .lock()
                .expect("not poisoned")
                .insert(id, addr.clone());
            self.book.lock().expect("not poisoned").insert(
                id,
                address_book::Entry {
                    addrs: addr.direct.clone(),
                    relay: addr.relay.clone(),
                    seen: address_book::now(),
                },
            );
        }
        self.timings.record(
            format!(
                "connect {} ({})",
                id.fmt_short(),
                String::from_utf8_lossy(alpn)
            ),
            started,
            match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.to_string(),
            },
        );
        result
    }
}

impl Client {
    /// Binds an endpoint and joins the DHT.
    pub async fn connect(options: ClientOptions) -> Result<Arc<Self>, ClientError> {
        if options.relay_only
            && !options.relays.is_empty()
            && options.relays.iter().all(|r| r.node.is_none())
        {
            return Err(ClientError::NoLookupNode);
        }
        let endpoint = endpoint::bind(EndpointOptions {
            secret: options.secret.clone(),
            bind: options.bind,
            relays: options.relays.clone(),
            relay_only: options.relay_only,
            network: options.routing.network.clone(),
            nameserver: options.routing.nameserver,
            alpns: vec![],
        })
        .await?;
        let mut routing_options = options.routing.clone();
        routing_options.server = false;
        let timings = Arc::new(Timings::default());
        let book = options
            .address_book
            .as_deref()
            .map(address_book::load)
            .unwrap_or_default();
        let started = Instant::now();
        if options.relay_only {
            // No DHT node: its datagrams would carry this machine's address. The node
            // serving the relay looks things up instead (`lookups.rs`).
            let proxy = options.relays.iter().find_map(|r| {
                Proxy::through(
                    endpoint.clone(),
                    r,
                    routing_options.clone(),
                    options.connect_timeout,
                )
            });
            let Some(proxy) = proxy else {
                endpoint.close().await;
                return Err(ClientError::NoLookupNode);
            };
            timings.record("lookups", started, "through the relay's node");
            return Ok(Self::assemble(
                endpoint,
                Lookups::Via(proxy),
                options,
                book,
                timings,
            ));
        }
        let routing = Routing::start(routing_options, None).await?;
        // The bootstrap query ends only when none of its requests is in flight, so one
        // dead or frozen node in the network costs it a whole DHT request timeout. A
        // routing table of JOIN_ENOUGH nodes is enough to look things up: the bootstrap
        // goes on in the background.
        let joined = tokio::select! {
            joined = routing.bootstrapped() => joined,
            () = table_holds(&routing, JOIN_ENOUGH) => true,
        };
        if !joined {
            return Err(ClientError::NoNetwork {
                bootstrap: options.routing.bootstrap.clone(),
            });
        }
        let table = routing.routing_table_size().await.unwrap_or(0);
        timings.record(
            "dht join",
            started,
            format!("{table} nodes in the routing table"),
        );
        Ok(Self::assemble(
            endpoint,
            Lookups::Dht(routing),
            options,
            book,
            timings,
        ))
    }

    /// A client over an endpoint and a DHT node that already run: a storage node's own,
    /// when it acts as a client of its peers (repair). Only the options' timeouts are
    /// used; closing the client does not close the endpoint's owner.
    pub fn with_endpoint(
        endpoint: Endpoint,
        routing: Routing,
        options: ClientOptions,
    ) -> Arc<Self> {
        Self::assemble(
            endpoint,
            Lookups::Dht(routing),
            ClientOptions {
                address_book: None,
                ..options
            },
            Default::default(),
            Arc::default(),
        )
    }

    fn assemble(
        endpoint: Endpoint,
        routing: Lookups,
        options: ClientOptions,
        book: Book,
        timings: Arc<Timings>,
    ) -> Arc<Self> {
        let routing = Arc::new(routing);
        Arc::new(Self {
            endpoint: endpoint.clone(),
            routing: routing.clone(),
            options: options.clone(),
            conns: Mutex::new(HashMap::new()),
            dialer: Arc::new(Dialer {
                endpoint: endpoint.clone(),
                routing: routing.clone(),
                connect_timeout: options.connect_timeout,
                addrs: Mutex::new(
                    book.iter()
                        .map(|(id, e)| (*id, Arc::new(OnceCell::new_with(Some(e.peer_addr())))))
                        .collect(),
                ),
                backoff: Mutex::new(HashMap::new()),
                proven: Mutex::new(HashMap::new()),
                book: Mutex::new(book),
                timings: timings.clone(),
            }),
            holders: Mutex::new(HashMap::new()),
            blob_holders: Mutex::new(HashMap::new()),
            timings,
        })
    }

    /// Where this client's time went so far.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// This client's identity.
    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// How each open connection's packets travel now (direct after hole punching, or
    /// through a relay), one entry per peer.
    pub fn routes(&self) -> Vec<(EndpointId, Route)> {
        let conns = self.conns.lock().expect("not poisoned");
        let mut out: Vec<(EndpointId, Route)> = conns
            .iter()
            .filter_map(|((id, _), slot)| Some((*id, endpoint::route(slot.get()?))))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out.dedup_by_key(|(id, _)| *id);
        out
    }

    /// Where lookups go: the client's DHT node, or the relay's node (relay-only).
    pub fn routing(&self) -> &Lookups {
        &self.routing
    }

    /// The options it was connected with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Closes the endpoint, giving live connections a moment to close gracefully (a
    /// connection to a dead peer would otherwise hold this up for seconds).
    pub async fn close(&self) {
        let started = Instant::now();
        let conns: Vec<Connection> = self
            .conns
            .lock()
            .expect("not poisoned")
            .drain()
            .filter_map(|(_, c)| c.get().cloned())
            .collect();
        for conn in &conns {
            conn.close(0u32.into(), b"done");
        }
        // The close frames leave at once; waiting lets a lost one be sent again, which
        // takes a few round trips. A connection to a frozen peer would hold the endpoint
        // for its whole (backed-off) closing period: the wait is a few of the live
        // connections' round trips, never a fixed half second on every command.
        let wait = conns
            .iter()
            .map(rtt)
            .filter(|r| *r < Duration::MAX)
            .max()
            .map_or(CLOSE_WAIT_MIN, |r| r * 4)
            .clamp(CLOSE_WAIT_MIN, CLOSE_WAIT_MAX);
        let closed = tokio::time::timeout(wait, self.endpoint.close()).await;
        // Only a client that connected has addresses to add.
        if let Some(path) = self
            .options
            .address_book
            .as_ref()
            .filter(|_| !conns.is_empty())
        {
            let book = self.dialer.book.lock().expect("not poisoned").clone();
            if let Err(e) = address_book::save(path, &book) {
                debug!("cannot save the address book {}: {e}", path.display());
            }
        }
        self.timings.record(
            "close",
            started,
            if closed.is_ok() {
                "done"
            } else {
                "gave up waiting"
            },
        );
    }

    /// Dials `id` on `alpn`, reusing a live connection (or one being made) and a
    /// known address. The handshake runs in its own task: a caller that stops waiting
    /// (a get that has what it needs) never leaves a half-made connection behind, which
    /// would hold up [`Client::close`] for a handshake timeout.
    pub(crate) async fn dial(
        &self,
        id: EndpointId,
        alpn: &'static [u8],
    ) -> Result<Connection, DialError> {
        // The task fails only if it was cancelled (runtime shutdown) or panicked.
        self.start_dial(id, alpn)
            .await
            .unwrap_or(Err(DialError::Cancelled { node: id }))
    }

    /// Starts dialing `id` on `alpn` (see [`Client::dial`]) without waiting: a
    /// connection the caller will need next is ready when it asks.
    pub(crate) fn start_dial(
        &self,
        id: EndpointId,
        alpn: &'static [u8],
    ) -> tokio::task::JoinHandle<Result<Connection, DialError>> {
        let cell = {
            let mut conns = self.conns.lock().expect("not poisoned");
            let cell = conns.entry((id, alpn)).or_default();
            if cell.get().is_some_and(|c| c.close_reason().is_some()) {
                *cell = Arc::default();
            }
            cell.clone()
        };
        if let Some(e) = self.dialer.backed_off(id) {
            return tokio::spawn(async move { Err(e) });
        }
        let dialer = self.dialer.clone();
        // The task, not this future, fills the cell: it finishes even if we stop waiting,
        // and later callers wait for it instead of dialing again.
        tokio::spawn(async move {
            cell.get_or_try_init(|| dialer.dial(id, alpn))
                .await
                .cloned()
        })
    }

    /// Finds storage nodes and asks each for its space. Returns how many were announced,
    /// and those that answered, fastest first. Does not wait long for the last ones:
    /// see [`Self::storage_nodes_wanting`].
    pub async fn storage_nodes(&self) -> Result<(usize, Vec<StorageNode>), ClientError> {
        self.storage_nodes_wanting(None).await
    }

    /// [`Self::storage_nodes`], settling once `want` nodes (by default three quarters of
    /// those announced) have answered and the others had as long again: a node that is
    /// down or frozen costs a put a fraction of a second, never a connect timeout.
    pub async fn storage_nodes_wanting(
        &self,
        want: Option<usize>,
    ) -> Result<(usize, Vec<StorageNode>), ClientError> {
        self.ask_storage_nodes(self.routing.storage_nodes().await?, want)
            .await
    }

    /// [`Self::storage_nodes`] with a lookup that hears out every DHT node it asks
    /// rather than settling on the first answers: for when those were too few.
    pub async fn all_storage_nodes(&self) -> Result<(usize, Vec<StorageNode>), ClientError> {
        self.ask_storage_nodes(self.routing.all_storage_nodes().await?, None)
            .await
    }

    async fn ask_storage_nodes(
        &self,
        ids: Vec<EndpointId>,
        want: Option<usize>,
    ) -> Result<(usize, Vec<StorageNode>), ClientError> {
        use n0_future::StreamExt;
        let found = ids.len();
        let want = want.unwrap_or(found * 3 / 4).clamp(1, found.max(1));
        let started = Instant::now();
        let mut asking: n0_future::FuturesUnordered<_> = ids
            .into_iter()
            .map(|id| async move {
                let conn = match self.dial(id, proto::ALPN).await {
                    Ok(conn) => conn,
                    Err(e) => return Err(format!("{}: {e}", id.fmt_short())),
                };
                match request::stat(&conn, &[]).await {
                    Ok(Stat { capacity, used, .. }) => Ok(StorageNode {
                        id,
                        rtt: rtt(&conn),
                        capacity,
                        used,
                        conn,
                    }),
                    Err(e) => {
                        if matches!(e, request::RequestError::Silent(_)) {
                            self.lost(id);
                        }
                        Err(format!("{}: {e}", id.fmt_short()))
                    }
                }
            })
            .collect();
        let mut nodes = Vec::new();
        let mut failed = 0;
        let mut settle: Option<Instant> = None;
        loop {
            let next = match settle {
                Some(at) => match tokio::time::timeout_at(at.into(), asking.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => asking.next().await,
            };
            match next {
                Some(Ok(node)) => nodes.push(node),
                Some(Err(e)) => {
                    failed += 1;
                    debug!("storage node did not answer: {e}");
                }
                None => break,
            }
            if settle.is_none() && nodes.len() >= want {
                // The stragglers get as long again as the first `want` took: relative to
                // this network's real delays, never a fixed number.
                settle = Some(Instant::now() + started.elapsed().max(SETTLE_MIN));
            }
        }
        let waited = asking.len();
        self.timings.record(
            "ask storage nodes",
            started,
            format!(
                "{} answered, {failed} failed, {waited} not waited for",
                nodes.len()
            ),
        );
        nodes.sort_by_key(|n| n.rtt);
        Ok((found, nodes))
    }

    /// Clears `id`'s dial backoff: the next dial tries it.
    pub(crate) fn forgive(&self, id: EndpointId) {
        self.dialer.succeeded(id);
    }

    /// A request to `id` found it silent (frozen or gone): later dials to it back off,
    /// and its cached connections are dropped, so the next caller does not wait on them.
    pub(crate) fn lost(&self, id: EndpointId) {
        self.dialer.failed(id);
        self.conns
            .lock()
            .expect("not poisoned")
            .retain(|(node, _), _| *node != id);
    }
}

/// The least and the most [`Client::close`] waits for the endpoint to close.
const CLOSE_WAIT_MIN: Duration = Duration::from_millis(20);
const CLOSE_WAIT_MAX: Duration = Duration::from_millis(500);

/// Nodes in a client's routing table with which it starts looking things up, its
/// bootstrap still running (see [`Client::connect`]).
const JOIN_ENOUGH: usize = 8;

/// Resolves once `routing`'s table holds at least `want` nodes.
async fn table_holds(routing: &Routing, want: usize) {
    loop {
        if routing.routing_table_size().await.unwrap_or(0) >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The least time stragglers get in [`Client::storage_nodes_wanting`].
const SETTLE_MIN: Duration = Duration::from_millis(20);

/// Reads a file's growing holder list (see [`Client::holders_of`]), each holder once.
#[derive(Debug)]
pub(crate) struct HolderFeed {
    rx: watch::Receiver<Holders>,
    seen: usize,
}

impl HolderFeed {
    pub(crate) fn new(rx: watch::Receiver<Holders>) -> Self {
        Self { rx, seen: 0 }
    }

    /// The holders found since the last call, and whether the lookup has ended.
    pub(crate) fn take_new(&mut self) -> (Vec<EndpointId>, bool) {
        let h = self.rx.borrow_and_update();
        let new = h.ids[self.seen..].to_vec();
        self.seen = h.ids.len();
        (new, h.done)
    }

    /// How many holders have been taken.
    pub(crate) fn seen(&self) -> usize {
        self.seen
    }

    /// Waits for the list to change; `false` if the lookup's task is gone.
    pub(crate) async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

/// The holders of a file found so far (see [`Client::holders_of`]).
#[derive(Debug, Default)]
pub(crate) struct Holders {
    /// In the order found.
    pub ids: Vec<EndpointId>,
    /// The lookup has ended.
    pub done: bool,
}

pub(crate) use mosaic_wire::request::rtt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_up_to_the_cap() {
        let now = Instant::now();
        let pause = |failures| Backoff::after(failures, now).until - now;
        assert_eq!(pause(1), BACKOFF_FIRST);
        assert_eq!(pause(2), BACKOFF_FIRST * 2);
        assert_eq!(pause(4), BACKOFF_FIRST * 8);
        assert_eq!(pause(7), BACKOFF_MAX);
        // Far past the cap, and no overflow however many failures.
        assert_eq!(pause(40), BACKOFF_MAX);
        assert_eq!(pause(u32::MAX), BACKOFF_MAX);
    }
}
