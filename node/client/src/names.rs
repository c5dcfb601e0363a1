//! Publishing and resolving mutable names (see `mosaic_codec::name` for the record's
//! value and `mosaic_wire::record` for its signature).
//!
//! A publish signs a record with a sequence number above both the clock (microseconds)
//! and the newest record the DHT holds, puts it to the DHT, and hands it to every node
//! holding the target file, which keep and republish it (so the name outlives the
//! publisher's presence). A resolve takes the highest sequence number found.

use iroh::EndpointId;
use mosaic_codec::name::{NameKey, NameRef, Pointer, ReadKey};
use mosaic_wire::{
    dht::RoutingError,
    proto,
    record::{SignedRecord, SigningKey},
    request,
};

use crate::{Client, ClientError, PeerError, lookups::Lookups};

/// What a publish did.
#[derive(Debug)]
pub struct Published {
    /// The record published.
    pub record: SignedRecord,
    /// The DHT put: `None` when another node puts it for this client (relay-only mode).
    pub dht: Option<Result<(), RoutingError>>,
    /// Nodes holding the target that keep (and republish) the record.
    pub kept_by: Vec<EndpointId>,
    /// Holders that did not, and why.
    pub refused: Vec<(EndpointId, PeerError)>,
}

/// What a name points to now.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The record (its sequence number says how recent it is).
    pub record: SignedRecord,
    /// Its value, opened.
    pub pointer: Pointer,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl Client {
    /// Publishes `pointer` under the name whose secret key is `signer`, sealed with
    /// `read` when given (a private name). The target must be announced by some node.
    pub async fn publish_name(
        &self,
        signer: &SigningKey,
        pointer: &Pointer,
        read: Option<&ReadKey>,
    ) -> Result<Published, ClientError> {
        let name = NameKey(signer.verifying_key().to_bytes());
        let file = pointer.target.id();
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        // Checked before any network work: a bad path or a readcap in clear.
        let value = pointer.encode(&name, read, nonce)?;
        let (holders, current) = tokio::join!(
            self.routing().providers(&file),
            self.routing().name_record(&name.0)
        );
        let holders = holders?;
        if holders.is_empty() {
            return Err(ClientError::NoSuchTarget { id: file });
        }
        // A failed lookup of the current record is not fatal: the clock is the floor,
        // and a DHT holding a newer record refuses ours (reported as stale).
        let newest = current.ok().flatten().map_or(i64::MIN, |r| r.seq);
        let seq = now_us().max(newest.saturating_add(1));
        let record = SignedRecord::sign(signer, seq, value)?;
        let dht = async {
            match self.routing() {
                Lookups::Dht(r) => Some(r.publish_record(&record).await),
                Lookups::Via(_) => None,
            }
        };
        let keep = n0_future::join_all(holders.iter().map(|&id| {
            let record = &record;
            async move { (id, self.offer_name(id, record, &file).await) }
        }));
        let (dht, kept) = tokio::join!(dht, keep);
        let (mut kept_by, mut refused) = (Vec::new(), Vec::new());
        for (id, r) in kept {
            match r {
                Ok(_) => kept_by.push(id),
                Err(e) => refused.push((id, e)),
            }
        }
        if let Some(Err(e @ RoutingError::Stale { .. })) = dht {
            return Err(e.into());
        }
        if kept_by.is_empty() && !matches!(dht, Some(Ok(()))) {
            return Err(ClientError::NameNotPublished {
                dht: match dht {
                    Some(Err(e)) => e.to_string(),
                    _ => "not tried: relay-only mode".into(),
                },
                holders: refused,
            });
        }
        Ok(Published {
            record,
            dht,
            kept_by,
            refused,
        })
    }

    /// Hands `record` (a name pointing at `file`) to `node`, which keeps and
    /// republishes it if it holds part of `file`; whether the node's DHT put took.
    pub async fn offer_name(
        &self,
        node: EndpointId,
        record: &SignedRecord,
        file: &mosaic_codec::Hash,
    ) -> Result<bool, PeerError> {
        let conn = self.dial(node, proto::ALPN).await?;
        Ok(request::hold_name(&conn, record, file).await?)
    }

    /// The newest record of `name` and what it points to.
    pub async fn resolve_name(&self, name: &NameRef) -> Result<Resolved, ClientError> {
        let key = name.key();
        let record = self
            .routing()
            .name_record(&key.0)
            .await?
            .ok_or(ClientError::NoSuchName { name: key })?;
        record.verify()?;
        let pointer = Pointer::decode(&record.value, &key, name.read_key())?;
        Ok(Resolved { record, pointer })
    }
}
