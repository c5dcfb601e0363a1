//! Uploading a file coded elsewhere: a browser page seals and erasure-codes a private
//! file itself (the gateway must not see its key or plaintext) and hands the gateway
//! each segment's `n` shards, then the manifest. [`ColumnUpload`] places the columns
//! like a put ([`Client::put`]'s stages 2 and 4) and streams shard `j` of every segment
//! to column `j`'s node as it arrives.
//!
//! Invariants: shards are accepted only in segment order and only of the lengths the
//! layout gives; the manifest is accepted only if its layout is the one begun and every
//! node's hash of what it received equals the manifest's column hash; the manifest is
//! stored on the column nodes only then. A session that fails or is dropped leaves no
//! pin behind: the last segment's shards are held back until [`ColumnUpload::finish`]
//! has checked the manifest's layout, so a session dropped or refused before that ends
//! every column stream short (a node keeps nothing of a short stream); after that,
//! every pin a node reports is recorded in the put's [`Undo`] guard before anything
//! else can fail. No spare nodes: the bytes cannot be produced again here, so a column node that
//! fails fails the upload, and the page may start again.

use bytes::Bytes;
use mosaic_codec::{Layout, Manifest};
use mosaic_wire::request::{self, RequestError, Stored};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    Client, ClientError, PutReport, Role, StorageNode,
    put::{PUT_PIPE_DEPTH, Undo, settle, store_manifest},
};

/// A coded upload in progress.
#[derive(Debug)]
pub struct ColumnUpload {
    layout: Layout,
    nodes: Vec<StorageNode>,
    senders: Vec<mpsc::Sender<Bytes>>,
    uploads: Vec<JoinHandle<Result<Stored, RequestError>>>,
    next: u64,
    /// The last segment's shards, sent only by `finish`.
    last: Option<Bytes>,
}

impl Client {
    /// Chooses `n` nodes with room for a column of `layout` and opens a column upload
    /// to each.
    pub async fn begin_columns(&self, layout: Layout) -> Result<ColumnUpload, ClientError> {
        let n = layout.params().columns();
        let column_len = layout.column_len();
        let (nodes, _spares) = self.choose_nodes(n, column_len).await?;
        let mut senders = Vec::with_capacity(n);
        let mut uploads = Vec::with_capacity(n);
        for node in &nodes {
            let (tx, rx) = mpsc::channel::<Bytes>(PUT_PIPE_DEPTH);
            senders.push(tx);
            let conn = node.conn.clone();
            uploads.push(tokio::spawn(async move {
                request::upload(&conn, column_len, rx).await
            }));
        }
        Ok(ColumnUpload {
            layout,
            nodes,
            senders,
            uploads,
            next: 0,
            last: None,
        })
    }
}

impl ColumnUpload {
    /// The file's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The segment expected next.
    pub fn next_segment(&self) -> u64 {
        self.next
    }

    /// Bytes the shards of segment `index` take together.
    pub fn stripe_len(&self, index: u64) -> usize {
        self.layout.params().columns() * self.layout.segment_shard_len(index)
    }

    /// Sends segment `index`'s shards (`stripe`: shard 0, then 1, … each of the
    /// segment's shard length). It must be the next segment. The last segment's shards
    /// are held back until [`ColumnUpload::finish`].
    pub async fn send_segment(&mut self, index: u64, stripe: Bytes) -> Result<(), ClientError> {
        if index != self.next || index >= self.layout.segments() {
            return Err(ClientError::Coded(format!(
                "segment {index} sent, segment {} expected (of {})",
                self.next,
                self.layout.segments()
            )));
        }
        let expected = self.stripe_len(index);
        if stripe.len() != expected {
            return Err(ClientError::Coded(format!(
                "segment {index}'s shards take {expected} bytes, {} were sent",
                stripe.len()
            )));
        }
        if index + 1 == self.layout.segments() {
            self.last = Some(stripe);
        } else {
            send_stripe(&self.senders, &self.nodes, &self.layout, index, stripe).await?;
        }
        self.next += 1;
        Ok(())
    }

    /// Checks `manifest` against the layout, sends the last segment, checks what every
    /// node stored against the manifest, then stores it on every column's node. On any
    /// error the upload's pins are undone.
    pub async fn finish(self, manifest: &[u8]) -> Result<PutReport, ClientError> {
        let Self {
            layout,
            nodes,
            senders,
            uploads,
            next,
            last,
        } = self;
        let manifest = Manifest::from_bytes(manifest)?;
        let last = match last {
            Some(last) if *manifest.layout() == layout && next == layout.segments() => last,
            // Dropped here, every column stream ends short: no node keeps anything.
            _ => {
                return Err(ClientError::Coded(format!(
                    "the manifest describes another file than the one sent ({next} of {} segments sent)",
                    layout.segments()
                )));
            }
        };
        let sent = send_stripe(&senders, &nodes, &layout, next - 1, last).await;
        // Ends every column stream: complete ones are answered, short ones refused.
        drop(senders);
        let mut answers = Vec::with_capacity(uploads.len());
        for task in uploads {
            answers.push(task.await.expect("upload tasks do not panic"));
        }
        // Every new pin is recorded before anything can fail.
        let mut undo = Undo::default();
        for (column, answer) in answers.iter().enumerate() {
            if let Ok(stored) = answer {
                undo.record(&nodes[column], stored);
            }
        }
        let result = async {
            sent?;
            for (column, answer) in answers.into_iter().enumerate() {
                let expected = manifest.columns()[column];
                match answer {
                    Ok(stored) if stored.hash == expected => {}
                    Ok(stored) => {
                        return Err(ClientError::StoredHashMismatch {
                            node: nodes[column].id,
                            what: Role::Column(column),
                            got: stored.hash,
                            expected,
                        });
                    }
                    Err(source) => {
                        return Err(ClientError::Upload {
                            node: nodes[column].id,
                            what: Role::Column(column),
                            source,
                        });
                    }
                }
            }
            store_manifest(&nodes, &manifest, &mut undo).await?;
            Ok(manifest)
        }
        .await;
        settle(result, undo, &nodes).await
    }
}

/// Hands segment `index`'s shards to the column uploads, shard `j` to column `j`.
async fn send_stripe(
    senders: &[mpsc::Sender<Bytes>],
    nodes: &[StorageNode],
    layout: &Layout,
    index: u64,
    stripe: Bytes,
) -> Result<(), ClientError> {
    let shard = layout.segment_shard_len(index);
    for (j, tx) in senders.iter().enumerate() {
        if tx
            .send(stripe.slice(j * shard..(j + 1) * shard))
            .await
            .is_err()
        {
            return Err(ClientError::UploadStopped {
                node: nodes[j].id,
                what: Role::Column(j),
            });
        }
    }
    Ok(())
}
