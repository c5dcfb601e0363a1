//! The keyring's uploads, for every command that needs them: a keyring name, readcap
//! or id resolved to a cap ([`resolve`]), an upload recorded ([`record_upload`]), and
//! which blobs an identity may unpin without dropping another entry's pins
//! ([`blobs_to_unpin`], [`unpin_replaced`]). Not a command: commands use it, it uses no
//! command module.

use std::{
    collections::BTreeSet,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use iroh::EndpointId;
use mosaic_client::{Client, file_blobs};
use mosaic_codec::{Cap, Hash};

use crate::{
    exit::{Code, fail},
    keyring::{Added, Record},
    settings::{ClientArgs, Global, NetworkArgs, keyring, keys, with_client},
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A cap, id or keyring name, as a cap and the keyring entry if any.
pub fn resolve(arg: &str) -> Result<(Cap, Option<Record>)> {
    if arg.starts_with("mr1") || arg.starts_with("mi1") {
        return Ok((arg.parse()?, None));
    }
    let record = keyring()?.require(arg)?;
    Ok((record.cap.parse()?, Some(record)))
}

fn hex_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(Hash::to_hex).collect()
}

pub(crate) fn node_ids(ids: &[String]) -> Vec<EndpointId> {
    ids.iter().filter_map(|s| s.parse().ok()).collect()
}

/// What `put` uploaded, to record.
#[derive(Debug)]
pub struct Upload<'a> {
    /// The name asked for.
    pub name: &'a str,
    /// Its cap.
    pub cap: &'a Cap,
    /// Plaintext bytes.
    pub size: u64,
    /// `file` or `directory`.
    pub kind: &'a str,
    /// The identity that pinned it.
    pub key: &'a str,
    /// Its blobs: the manifest's, then the columns'.
    pub blobs: &'a [Hash],
    /// Where it is pinned.
    pub nodes: &'a BTreeSet<EndpointId>,
    /// BLAKE3 of its plaintext (hex), or empty (see [`Record::content`]).
    pub content: String,
}

/// Records a file just put ([`crate::keyring::Keyring::add`]: under a free name, never
/// over another entry unless `replace`); returns the entry as stored and what was done.
/// If recording fails the upload still happened: the error carries the cap, so it is
/// not lost.
pub fn record_upload(upload: &Upload<'_>, replace: bool) -> Result<(Record, Added)> {
    let mut record = Record {
        name: upload.name.to_owned(),
        size: upload.size,
        cap: upload.cap.to_string(),
        created: now(),
        kind: upload.kind.to_owned(),
        key: upload.key.to_owned(),
        blobs: hex_hashes(upload.blobs),
        nodes: upload.nodes.iter().map(ToString::to_string).collect(),
        content: upload.content.clone(),
    };
    let added = keyring()
        .and_then(|ring| ring.add(&mut record, replace))
        .with_context(|| {
            format!(
                "the upload succeeded but recording it as {:?} in your keyring failed; keep its cap: {}",
                upload.name, upload.cap
            )
        })?;
    Ok((record, added))
}

/// What unpinning the file a `put --replace` replaced did.
#[derive(Debug, Default)]
pub struct ReplacedUnpin {
    /// Nodes that dropped the pins.
    pub unpinned_on: usize,
    /// What went wrong, for humans (its pins stay where it did).
    pub problems: Vec<String>,
}

/// Unpins the file of `old`, an entry `put --replace` replaced (already gone from the
/// keyring), as the identity that pinned it: what `rm` does, less the blobs an entry
/// of that identity still uses (the new upload, when it is the same content). Never
/// fails: the put is done, so what could not be unpinned is reported.
pub fn unpin_replaced(
    g: &Global,
    net: &NetworkArgs,
    args: &ClientArgs,
    old: &Record,
) -> ReplacedUnpin {
    let unpinned = (|| {
        let cap: Cap = old.cap.parse()?;
        let key = if old.key.is_empty() {
            g.key_name()
        } else {
            old.key.clone()
        };
        if !keys()?.exists(&key) {
            return fail(
                Code::NotFound,
                format!("the key {key:?} that pinned it is not on this machine"),
            );
        }
        // Its own `--timings` would describe a second session: the put's are enough.
        let owner = Global {
            key: Some(key.clone()),
            timings: false,
            ..g.clone()
        };
        let extra = node_ids(&old.nodes);
        with_client(&owner, net, args, |client| async move {
            let mut blobs = own_blobs(&client, old, &cap).await?;
            let in_use = blobs_in_use(&key)?;
            blobs.retain(|h| !in_use.contains(&h.to_hex()));
            anyhow::Ok(client.unpin_blobs(&blobs, &extra).await?)
        })
    })();
    match unpinned {
        Ok(report) => ReplacedUnpin {
            unpinned_on: report.done.len(),
            problems: report.problems(),
        },
        Err(e) => ReplacedUnpin {
            unpinned_on: 0,
            problems: vec![format!("{e:#}")],
        },
    }
}

/// The blobs of `record`'s file: as recorded, or (for a record from before the list)
/// through its manifest.
async fn own_blobs(client: &Client, record: &Record, cap: &Cap) -> Result<Vec<Hash>> {
    let blobs: Vec<Hash> = record
        .blobs
        .iter()
        .filter_map(|h| Hash::from_hex(h).ok())
        .collect();
    if blobs.is_empty() {
        return Ok(file_blobs(&client.manifest(&cap.id()).await?));
    }
    Ok(blobs)
}

/// The blobs of `record` to unpin: its own (fetched through the manifest if the record
/// predates the list), less those another keyring entry pinned by the same identity
/// still uses (the same file uploaded twice, a file also in a directory): a pin is one
/// per (blob, owner), so dropping it would drop theirs too.
pub(crate) async fn blobs_to_unpin(
    client: &Client,
    record: &Record,
    cap: &Cap,
    acting_key: &str,
) -> Result<Vec<Hash>> {
    let mut blobs = own_blobs(client, record, cap).await?;
    let shared: BTreeSet<String> = keyring()?
        .list()?
        .into_iter()
        .filter(|r| r.name != record.name && r.key == acting_key)
        .flat_map(|r| r.blobs)
        .collect();
    blobs.retain(|h| !shared.contains(&h.to_hex()));
    Ok(blobs)
}

/// Blobs that keyring entries of identity `key` use (hex).
pub fn blobs_in_use(key: &str) -> Result<BTreeSet<String>> {
    Ok(keyring()?
        .list()?
        .into_iter()
        .filter(|r| r.key == key)
        .flat_map(|r| r.blobs)
        .collect())
}

/// Acts as the identity that pinned `record` (pins belong to it), unless `--key` says;
/// that key must be on this machine (a missing `default` is not silently created: its
/// unpins would change nothing).
pub(crate) fn as_owner(g: &Global, record: Option<&Record>) -> Result<(Global, String)> {
    let key = g
        .key
        .clone()
        .or_else(|| record.map(|r| r.key.clone()).filter(|k| !k.is_empty()));
    let owner = Global { key, ..g.clone() };
    let name = owner.key_name();
    if !keys()?.exists(&name) {
        return fail(
            Code::NotFound,
            format!(
                "the key {name:?} that pinned this file is not on this machine: bring it with `mosaic key import` or `mosaic import`, or name another with --key"
            ),
        );
    }
    Ok((owner, name))
}
