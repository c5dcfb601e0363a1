//! Pins from the client's side: asking the nodes that hold a file's blobs to keep them
//! for this identity, dropping those pins, and reading where each blob is pinned.
//!
//! A file's blobs are its manifest and its `n` columns. Pins are per owner (the QUIC
//! identity of the caller), so pinning and unpinning are safe to send to every node
//! that may hold a blob: a node that holds nothing answers "missing", and one owner's
//! unpin never drops another owner's pin (the node enforces it, see `store`).
//!
//! Where no reachable holder accepts a pin for a blob (too few hold it, or they refuse
//! this identity), the blob is copied, verified on the way (iroh-blobs streaming), to a
//! storage node that holds no other blob of the file, which stores and pins it.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use iroh::EndpointId;
use mosaic_codec::{Hash, Manifest};
use mosaic_wire::{
    proto::{self, NodeStatus},
    request,
};
use n0_future::StreamExt;
use tokio::sync::mpsc;

use crate::{Client, ClientError, PUT_PIPE_DEPTH, PeerError, Role, file_blobs};

/// A blob on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The node.
    pub node: EndpointId,
    /// This client pins it there.
    pub yours: bool,
    /// How many owners pin it there.
    pub owners: u32,
}

/// Where one blob of a file is.
#[derive(Debug, Clone)]
pub struct BlobHealth {
    /// Its hash.
    pub hash: Hash,
    /// What it is.
    pub role: Role,
    /// Reachable nodes that hold it.
    pub places: Vec<Place>,
}

/// Where every blob of a file is, as far as the reachable nodes say.
#[derive(Debug, Clone)]
pub struct FileHealth {
    /// The manifest first, then the columns in order.
    pub blobs: Vec<BlobHealth>,
    /// Columns needed to read the file (`k`).
    pub needed: usize,
    /// Nodes announced for some blob that did not answer.
    pub unreachable: Vec<EndpointId>,
}

impl FileHealth {
    /// Columns held by at least one reachable node.
    pub fn columns_available(&self) -> usize {
        self.columns().filter(|b| !b.places.is_empty()).count()
    }
    /// Columns this client pins on at least one node.
    pub fn columns_pinned(&self) -> usize {
        self.columns()
            .filter(|b| b.places.iter().any(|p| p.yours))
            .count()
    }
    /// Whether the file can be read now: the manifest and `k` columns are reachable.
    pub fn readable(&self) -> bool {
        self.blobs.first().is_some_and(|m| !m.places.is_empty())
            && self.columns_available() >= self.needed
    }
    fn columns(&self) -> impl Iterator<Item = &BlobHealth> {
        self.blobs
            .iter()
            .filter(|b| matches!(b.role, Role::Column(_)))
    }
}

/// What `pin_file` did.
#[derive(Debug, Clone, Default)]
pub struct PinReport {
    /// Per blob (manifest first), the nodes now pinning it for us.
    pub pinned: Vec<Vec<EndpointId>>,
    /// Blobs copied to a new node: (blob index, node).
    pub copied: Vec<(usize, EndpointId)>,
    /// Refusals and failures, for the user.
    pub problems: Vec<String>,
}

impl PinReport {
    /// Blobs (by index, manifest = 0) pinned nowhere.
    pub fn unpinned(&self) -> Vec<usize> {
        self.pinned
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_empty())
            .map(|(i, _)| i)
            .collect()
    }
}

/// What `unpin_blobs` did.
#[derive(Debug, Default)]
pub struct UnpinReport {
    /// Nodes that confirmed.
    pub done: Vec<EndpointId>,
    /// Nodes that could not be told, and why.
    pub failed: Vec<(EndpointId, PeerError)>,
}

impl UnpinReport {
    /// The failures, for humans.
    pub fn problems(&self) -> Vec<String> {
        self.failed
            .iter()
            .map(|(node, e)| format!("node {}: {e}", node.fmt_short()))
            .collect()
    }
}

impl Client {
    /// Asks `node` for its status and the pins on `hashes` (at most
    /// [`proto::MAX_HASHES`]).
    pub async fn node_status(
        &self,
        node: EndpointId,
        hashes: &[Hash],
    ) -> Result<NodeStatus, PeerError> {
        Ok(self.probe(node, hashes).await?.0)
    }

    /// [`Client::node_status`], and the round-trip time of the connection to `node`.
    pub async fn probe(
        &self,
        node: EndpointId,
        hashes: &[Hash],
    ) -> Result<(NodeStatus, std::time::Duration), PeerError> {
        let conn = self.dial(node, proto::ALPN).await?;
        let status = request::status(&conn, hashes).await?;
        Ok((status, crate::client::rtt(&conn)))
    }

    /// Nodes announcing any of `hashes` on the DHT, plus `extra`.
    async fn holders(
        &self,
        hashes: &[Hash],
        extra: &[EndpointId],
    ) -> Result<BTreeSet<EndpointId>, ClientError> {
        let found = n0_future::join_all(hashes.iter().map(|h| self.routing().providers(h))).await;
        let mut nodes: BTreeSet<EndpointId> = extra.iter().copied().collect();
        for providers in found {
            nodes.extend(providers?);
        }
        Ok(nodes)
    }

    /// Where each blob of the file is held and pinned. `extra` nodes (e.g. where the
    /// file was put) are asked even if the DHT does not list them.
    ///
    /// One DHT lookup in the common case: every column holder also holds and announces
    /// the manifest, so the manifest's providers are asked first; only columns none of
    /// them holds are looked up on their own (a holder that lost the manifest, or one
    /// that has not announced it yet).
    pub async fn file_health(
        &self,
        manifest: &Manifest,
        extra: &[EndpointId],
    ) -> Result<FileHealth, ClientError> {
        let hashes = file_blobs(manifest);
        let mut blobs: Vec<BlobHealth> = hashes
            .iter()
            .enumerate()
            .map(|(i, &hash)| BlobHealth {
                hash,
                role: Role::of_index(i),
                places: Vec::new(),
            })
            .collect();
        let mut asked: BTreeSet<EndpointId> = BTreeSet::new();
        let mut unreachable = Vec::new();
        let first = self.holders(&hashes[..1], extra).await?;
        self.ask_places(&hashes, first, &mut asked, &mut blobs, &mut unreachable)
            .await;
        let lost: Vec<Hash> = blobs
            .iter()
            .filter(|b| b.places.is_empty())
            .map(|b| b.hash)
            .collect();
        if !lost.is_empty() {
            let more = self.holders(&lost, &[]).await?;
            self.ask_places(&hashes, more, &mut asked, &mut blobs, &mut unreachable)
                .await;
        }
        Ok(FileHealth {
            blobs,
            needed: manifest.layout().params().data_columns(),
            unreachable,
        })
    }

    /// Asks each node of `nodes` not asked yet which of `hashes` it holds and pins.
    async fn ask_places(
        &self,
        hashes: &[Hash],
        nodes: BTreeSet<EndpointId>,
        asked: &mut BTreeSet<EndpointId>,
        blobs: &mut [BlobHealth],
        unreachable: &mut Vec<EndpointId>,
    ) {
        let new: Vec<EndpointId> = nodes.into_iter().filter(|n| asked.insert(*n)).collect();
        let answers = n0_future::join_all(
            new.iter()
                .map(|&node| async move { (node, self.node_status(node, hashes).await) }),
        )
        .await;
        for (node, answer) in answers {
            let Ok(status) = answer else {
                unreachable.push(node);
                continue;
            };
            for (blob, pins) in blobs.iter_mut().zip(&status.blobs_asked) {
                if pins.held {
                    blob.places.push(Place {
                        node,
                        yours: pins.yours,
                        owners: pins.owners,
                    });
                }
            }
        }
    }

    /// Pins every blob of the file for this client on every reachable node holding it;
    /// a blob no holder pins for us is copied to a new storage node.
    pub async fn pin_file(
        &self,
        manifest: &Manifest,
        extra: &[EndpointId],
    ) -> Result<PinReport, ClientError> {
        let health = self.file_health(manifest, extra).await?;
        let hashes = file_blobs(manifest);
        let mut by_node: BTreeMap<EndpointId, Vec<usize>> = BTreeMap::new();
        for (i, blob) in health.blobs.iter().enumerate() {
            for place in &blob.places {
                by_node.entry(place.node).or_default().push(i);
            }
        }
        let mut report = PinReport {
            pinned: vec![Vec::new(); hashes.len()],
            ..PinReport::default()
        };
        let answers = n0_future::join_all(by_node.iter().map(|(&node, blobs)| {
            let asked: Vec<Hash> = blobs.iter().map(|&i| hashes[i]).collect();
            async move { (node, self.send_pins(node, &asked, true).await) }
        }))
        .await;
        for (node, answer) in answers {
            match answer {
                Ok(missing) => {
                    for &i in &by_node[&node] {
                        if !missing.contains(&hashes[i]) {
                            report.pinned[i].push(node);
                        }
                    }
                }
                Err(e) => report
                    .problems
                    .push(format!("node {} refused: {e}", node.fmt_short())),
            }
        }
        let lonely = report.unpinned();
        if lonely.is_empty() {
            return Ok(report);
        }
        // Copy each blob no one pins for us to a node holding nothing of this file.
        let (_, candidates) = self.storage_nodes().await?;
        let mut used: BTreeSet<EndpointId> = health
            .blobs
            .iter()
            .flat_map(|b| b.places.iter().map(|p| p.node))
            .collect();
        for i in lonely {
            let mut done = false;
            for candidate in &candidates {
                if used.contains(&candidate.id) {
                    continue;
                }
                match self.copy_blob(manifest, i, candidate.id).await {
                    Ok(()) => {
                        used.insert(candidate.id);
                        report.pinned[i].push(candidate.id);
                        report.copied.push((i, candidate.id));
                        done = true;
                        break;
                    }
                    Err(e) => report.problems.push(format!(
                        "copying {} to node {}: {e}",
                        Role::of_index(i),
                        candidate.id.fmt_short()
                    )),
                }
            }
            if !done {
                report.problems.push(format!(
                    "{} is pinned nowhere for you: no reachable holder accepted a pin and no other storage node took a copy",
                    Role::of_index(i)
                ));
            }
        }
        Ok(report)
    }

    /// Drops this client's pins on `hashes` on every node that announces one of them,
    /// and on `extra`. Returns the nodes that confirmed, and those that could not be
    /// told (with why).
    pub async fn unpin_blobs(
        &self,
        hashes: &[Hash],
        extra: &[EndpointId],
    ) -> Result<UnpinReport, ClientError> {
        let nodes = self.holders(hashes, extra).await?;
        let answers = n0_future::join_all(
            nodes
                .iter()
                .map(|&node| async move { (node, self.send_pins(node, hashes, false).await) }),
        )
        .await;
        let mut report = UnpinReport::default();
        for (node, answer) in answers {
            match answer {
                Ok(_) => report.done.push(node),
                Err(e) => report.failed.push((node, e)),
            }
        }
        Ok(report)
    }

    /// Pins (or unpins) `hashes` on `node`; returns the hashes it does not hold.
    async fn send_pins(
        &self,
        node: EndpointId,
        hashes: &[Hash],
        pin: bool,
    ) -> Result<Vec<Hash>, PeerError> {
        let conn = self.dial(node, proto::ALPN).await?;
        Ok(request::pin(&conn, hashes, pin).await?)
    }

    /// Copies blob `index` of the file to `node`, which stores and pins it for us.
    async fn copy_blob(
        &self,
        manifest: &Manifest,
        index: usize,
        node: EndpointId,
    ) -> Result<(), ClientError> {
        let what = Role::of_index(index);
        let upload_err = |source| ClientError::Upload { node, what, source };
        let conn = self.dial(node, proto::ALPN).await?;
        let hash = file_blobs(manifest)[index];
        let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
        let stored = if index == 0 {
            let bytes = Bytes::copy_from_slice(manifest.as_bytes());
            let size = bytes.len() as u64;
            let _ = tx.send(bytes).await;
            drop(tx);
            request::upload(&conn, size, rx).await.map_err(upload_err)?
        } else {
            let blob = self.open_blob(&hash).await?;
            let size = blob.size();
            let mut stream = Box::pin(blob.stream(0..size));
            let feed = async move {
                while let Some(chunk) = stream.next().await {
                    if tx.send(chunk?).await.is_err() {
                        break;
                    }
                }
                Ok::<_, request::FetchError>(())
            };
            let (fed, stored) = tokio::join!(feed, request::upload(&conn, size, rx));
            if let Err(source) = fed {
                return Err(ClientError::Fetch { what, source });
            }
            stored.map_err(upload_err)?
        };
        if stored.hash != hash {
            return Err(ClientError::StoredHashMismatch {
                node,
                what,
                got: stored.hash,
                expected: hash,
            });
        }
        if index != 0 {
            // Every column holder also holds the manifest: readers find a file's
            // columns through the manifest's holders (one DHT lookup), so a copy
            // without it would only be found by the slow per-column lookup.
            Box::pin(self.copy_blob(manifest, 0, node)).await?;
        }
        Ok(())
    }
}
