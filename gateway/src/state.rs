//! What every request handler shares: the gateway's client, caches (segments,
//! manifests, directory indexes, names), metrics, denylist, upload sessions and
//! per-client limits, and the lookups through those caches (`manifest`, `directory`,
//! `read`). Routes use it; it uses no route but the types their state needs.

use std::{
    ops::Range,
    sync::{Arc, Mutex},
    time::Instant,
};

use lru::LruCache;
use mosaic_client::{
    Client, ClientError, ColumnUpload, ReadOptions, Resolved, SegmentStream,
    dir::{self, Directory},
};
use mosaic_codec::{Decoder, Hash, Manifest, name::NameKey};
use mosaic_wire::limit::Slot;
use n0_future::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::{
    DiskCache, GatewayOptions, Metrics,
    deny::Denylist,
    error::AppError,
    server::{ClientKey, Clients},
};

/// A private upload in progress (see [`crate::routes::upload`]).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) upload: ColumnUpload,
    pub(crate) last: Instant,
    pub(crate) _turn: OwnedSemaphorePermit,
    pub(crate) _client: Option<Slot<ClientKey>>,
}

/// The private sessions, by token.
pub(crate) type Sessions =
    Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<Session>>>>;

#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) client: Arc<Client>,
    pub(crate) cache: Arc<DiskCache>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) denylist: Denylist,
    pub(crate) manifests: Mutex<LruCache<Hash, Manifest>>,
    pub(crate) directories: Mutex<LruCache<Hash, Arc<Directory>>>,
    /// Names resolved lately, and when (see [`crate::routes::name`]).
    pub(crate) names: Mutex<LruCache<NameKey, ResolvedName>>,
    /// The last network report (`/api/network`), and when it was made.
    pub(crate) network: tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>,
    /// Private uploads in progress (see [`crate::routes::upload`]).
    pub(crate) uploads: Sessions,
    /// Connections and request rates per client (see [`crate::server`]).
    pub(crate) clients: Arc<Clients>,
    pub(crate) options: GatewayOptions,
}

pub(crate) type AppStateRef = Arc<AppState>;

/// A name's resolution (or its failure), and when it was made.
pub(crate) type ResolvedName = (Instant, Result<Resolved, Arc<AppError>>);

impl AppState {
    pub(crate) fn check_denied(&self, hash: &Hash) -> Result<(), AppError> {
        if self.denylist.denies(hash) {
            Err(AppError::Denied(*hash))
        } else {
            Ok(())
        }
    }

    /// The manifest of file `id`: from memory, or found within the lookup timeout.
    pub(crate) async fn manifest(&self, id: &Hash) -> Result<Manifest, AppError> {
        if let Some(m) = self.manifests.lock().expect("not poisoned").get(id) {
            return Ok(m.clone());
        }
        let limit = self.options.lookup_timeout;
        let manifest = tokio::time::timeout(limit, self.client.manifest(id))
            .await
            .map_err(|_| AppError::LookupTimeout {
                what: format!("file {id}"),
                limit,
            })?
            .map_err(|e| AppError::file(id, e))?;
        self.manifests
            .lock()
            .expect("not poisoned")
            .put(*id, manifest.clone());
        Ok(manifest)
    }

    /// A directory index, read whole (it is at most [`dir::MAX_INDEX_LEN`] bytes).
    pub(crate) async fn directory(&self, decoder: Decoder) -> Result<Arc<Directory>, AppError> {
        let id = decoder.manifest().id();
        if let Some(d) = self.directories.lock().expect("not poisoned").get(&id) {
            return Ok(d.clone());
        }
        let len = decoder.layout().length();
        if len > dir::MAX_INDEX_LEN {
            return Err(AppError::DirectoryTooLarge {
                id,
                len,
                max: dir::MAX_INDEX_LEN,
            });
        }
        let mut stream = self.read(decoder, None);
        let mut bytes = Vec::with_capacity(len as usize);
        while let Some(segment) = stream.next().await {
            let segment = segment.map_err(|e| AppError::file(&id, e))?;
            bytes.extend_from_slice(&segment.plaintext);
        }
        if bytes.len() as u64 != len {
            return Err(AppError::file(&id, ClientError::ReadStopped));
        }
        let directory = Arc::new(
            Directory::parse(&bytes).map_err(|source| AppError::Directory { id, source })?,
        );
        self.directories
            .lock()
            .expect("not poisoned")
            .put(id, directory.clone());
        Ok(directory)
    }

    pub(crate) fn read(&self, decoder: Decoder, segments: Option<Range<u64>>) -> SegmentStream {
        self.client.read(
            decoder,
            ReadOptions {
                segments,
                check_whole: false,
                cache: Some(self.cache.clone()),
            },
        )
    }
}
