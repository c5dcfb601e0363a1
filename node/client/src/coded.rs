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
//! pin behind (the put's [`Undo`] guard; a column stream cut short is not kept by its
//! node). No spare nodes: the bytes cannot be produced again here, so a column node that
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
    /// segment's shard length). It must be the next segment.
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
        let shard = self.layout.segment_shard_len(index);
        for (j, tx) in self.senders.iter().enumerate() {
            if tx
                .send(stripe.slice(j * shard..(j + 1) * shard))
                .await
                .is_err()
            {
                return Err(ClientError::UploadStopped {
                    node: self.nodes[j].id,
                    what: Role::Column(j),
                });
            }
        }
        self.next += 1;
        Ok(())
    }

    /// Checks `manifest` against the layout and what every node stored, then stores it
    /// on every column's node. On any error the upload's pins are undone.
    pub async fn finish(self, manifest: &[u8]) -> Result<PutReport, ClientError> {
        let Self {
            layout,
            nodes,
            senders,
            uploads,
            next,
        } = self;
        let mut undo = Undo::default();
        // Ends every column stream: complete ones are answered, short ones refused.
        drop(senders);
        let mut answers = Vec::with_capacity(uploads.len());
        for task in uploads {
            answers.push(task.await.expect("upload tasks do not panic"));
        }
        let result = async {
            let manifest = Manifest::from_bytes(manifest)?;
            if *manifest.layout() != layout || next != layout.segments() {
                return Err(ClientError::Coded(format!(
                    "the manifest describes another file than the one sent ({next} of {} segments sent)",
                    layout.segments()
                )));
            }
            let mut first_error = None;
            for (column, answer) in answers.into_iter().enumerate() {
                let expected = manifest.columns()[column];
                let failure = match answer {
                    Ok(stored) => {
                        undo.record(&nodes[column], &stored);
                        (stored.hash != expected).then_some(ClientError::StoredHashMismatch {
                            node: nodes[column].id,
                            what: Role::Column(column),
                            got: stored.hash,
                            expected,
                        })
                    }
                    Err(source) => Some(ClientError::Upload {
                        node: nodes[column].id,
                        what: Role::Column(column),
                        source,
                    }),
                };
                if let Some(e) = failure {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            store_manifest(&nodes, &manifest, &mut undo).await?;
            Ok(manifest)
        }
        .await;
        settle(result, undo, &nodes).await
    }
}
