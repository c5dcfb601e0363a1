//! Pins and health: `pin add`, `pin rm`, `pin ls` and `status`. A pin belongs to the
//! identity that made it; these commands act as the keyring entry's identity unless
//! `--key` says otherwise (see [`crate::account`]).

use std::collections::BTreeSet;

use anyhow::Result;
use iroh::EndpointId;
use mosaic_client::{Client, FileHealth, PinReport, file_blobs};
use mosaic_codec::{Cap, Decoder, Manifest};
use serde_json::json;

use crate::{
    exit::{Code, fail},
    settings::{ClientArgs, Global, NetworkArgs, keyring, with_client},
    uploads::{as_owner, blobs_to_unpin, node_ids, resolve},
};

async fn manifest_for(client: &Client, cap: &Cap) -> Result<Manifest> {
    let manifest = client.manifest(&cap.id()).await?;
    // A readcap's key must open the manifest: pinning a file you cannot read is
    // allowed with its id, not with a wrong key.
    if let Cap::Read(c) = cap {
        Decoder::new(manifest.clone(), Some(&c.key))?;
    }
    Ok(manifest)
}

/// `mosaic pin add CAP|ID|NAME`.
pub fn pin_add(g: &Global, net: NetworkArgs, args: ClientArgs, arg: &str) -> Result<()> {
    let (cap, record) = resolve(arg)?;
    let extra = record
        .as_ref()
        .map(|r| node_ids(&r.nodes))
        .unwrap_or_default();
    let report: PinReport = with_client(g, &net, &args, |client| async move {
        let manifest = manifest_for(&client, &cap).await?;
        Ok(client.pin_file(&manifest, &extra).await?)
    })?;
    let nodes: BTreeSet<EndpointId> = report.pinned.iter().flatten().copied().collect();
    if let Some(mut r) = record {
        r.nodes = nodes.iter().map(ToString::to_string).collect();
        keyring()?.put(&r)?;
    }
    let unpinned = report.unpinned();
    let value = json!({
        "pinned": report.pinned.iter().map(|n| n.len()).collect::<Vec<_>>(),
        "copied": report.copied.len(),
        "problems": report.problems,
        "complete": unpinned.is_empty(),
    });
    let summary = format!(
        "pinned {} of {} blobs on {} nodes ({} copied to new nodes)",
        report.pinned.len() - unpinned.len(),
        report.pinned.len(),
        nodes.len(),
        report.copied.len()
    );
    g.emit(value, || {
        for p in &report.problems {
            eprintln!("note: {p}");
        }
        eprintln!("{summary}");
        Ok(())
    })?;
    if !unpinned.is_empty() {
        return fail(
            Code::Network,
            format!("{summary}: the file is not fully pinned"),
        );
    }
    Ok(())
}

/// `mosaic pin rm CAP|ID|NAME`.
pub fn pin_rm(g: &Global, net: NetworkArgs, args: ClientArgs, arg: &str) -> Result<()> {
    let (cap, record) = resolve(arg)?;
    let extra = record
        .as_ref()
        .map(|r| node_ids(&r.nodes))
        .unwrap_or_default();
    let (owner, key) = as_owner(g, record.as_ref())?;
    let report = with_client(&owner, &net, &args, |client| {
        let record = record.clone();
        async move {
            let blobs = match &record {
                Some(r) => blobs_to_unpin(&client, r, &cap, &key).await?,
                None => file_blobs(&client.manifest(&cap.id()).await?),
            };
            anyhow::Ok(client.unpin_blobs(&blobs, &extra).await?)
        }
    })?;
    if let Some(mut r) = record {
        // Keep the nodes that still pin it, to retry there.
        r.nodes = report.failed.iter().map(|(n, _)| n.to_string()).collect();
        keyring()?.put(&r)?;
    }
    let problems = report.problems();
    g.emit(
        json!({"unpinned_on": report.done.len(), "problems": problems}),
        || {
            for p in &problems {
                eprintln!("warning: {p}");
            }
            eprintln!(
                "unpinned on {} nodes (other owners' pins stay)",
                report.done.len()
            );
            Ok(())
        },
    )?;
    if !report.failed.is_empty() {
        return Err(crate::exit::Failure::reported(
            Code::Network,
            format!(
                "{} nodes could not be told to unpin: retry",
                report.failed.len()
            ),
        )
        .into());
    }
    Ok(())
}

fn health_json(name: &str, h: &FileHealth) -> serde_json::Value {
    json!({
        "name": name,
        "needed": h.needed,
        "columns_available": h.columns_available(),
        "columns_pinned_by_you": h.columns_pinned(),
        "readable": h.readable(),
        "unreachable": h.unreachable.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "blobs": h.blobs.iter().map(|b| json!({
            "role": b.role.to_string(),
            "hash": b.hash.to_hex(),
            "places": b.places.iter().map(|p| json!({
                "node": p.node.to_string(),
                "yours": p.yours,
                "owners": p.owners,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// `mosaic pin ls [CAP|ID|NAME]`: per file, where each blob is held and pinned.
pub fn pin_ls(g: &Global, net: NetworkArgs, args: ClientArgs, arg: Option<&str>) -> Result<()> {
    let targets: Vec<(String, Cap, Vec<EndpointId>)> = match arg {
        Some(a) => {
            let (cap, record) = resolve(a)?;
            let name = record
                .as_ref()
                .map_or_else(|| a.to_owned(), |r| r.name.clone());
            vec![(
                name,
                cap,
                record.map(|r| node_ids(&r.nodes)).unwrap_or_default(),
            )]
        }
        None => keyring()?
            .list()?
            .into_iter()
            .filter_map(|r| Some((r.name.clone(), r.cap.parse().ok()?, node_ids(&r.nodes))))
            .collect(),
    };
    if targets.is_empty() {
        // Nothing to ask the network about; say so rather than print nothing.
        return g.emit(json!([]), || {
            eprintln!(
                "your keyring is empty: nothing to list (`mosaic put FILE` uploads and records a file; `mosaic pin ls CAP` shows any file)"
            );
            Ok(())
        });
    }
    let results = with_client(g, &net, &args, |client| async move {
        let mut out = Vec::new();
        for (name, cap, extra) in targets {
            let health = async {
                let manifest = client.manifest(&cap.id()).await?;
                anyhow::Ok(client.file_health(&manifest, &extra).await?)
            }
            .await;
            out.push((name, health));
        }
        anyhow::Ok(out)
    })?;
    let value = json!(
        results
            .iter()
            .map(|(name, h)| match h {
                Ok(h) => health_json(name, h),
                Err(e) => json!({"name": name, "error": e.to_string()}),
            })
            .collect::<Vec<_>>()
    );
    let any_unreadable = results
        .iter()
        .any(|(_, h)| !h.as_ref().is_ok_and(FileHealth::readable));
    g.emit(value, || {
        for (name, h) in &results {
            match h {
                Err(e) => println!("{name}: unavailable: {e}"),
                Ok(h) => {
                    let n = h.blobs.len() - 1;
                    println!(
                        "{name}: {} of {n} columns available (needs {}), {} pinned by you: {}",
                        h.columns_available(),
                        h.needed,
                        h.columns_pinned(),
                        if h.readable() {
                            "readable"
                        } else {
                            "NOT readable"
                        }
                    );
                    for b in &h.blobs {
                        let places: Vec<String> = b
                            .places
                            .iter()
                            .map(|p| {
                                format!("{}{}", p.node.fmt_short(), if p.yours { "*" } else { "" })
                            })
                            .collect();
                        println!(
                            "  {:<10} {}  {}",
                            b.role.to_string(),
                            b.hash.fmt_short(),
                            if places.is_empty() {
                                "held nowhere reachable".to_owned()
                            } else {
                                places.join(" ")
                            }
                        );
                    }
                }
            }
        }
        if results.iter().any(|(_, h)| h.is_ok()) {
            println!("(* = pinned by you)");
        }
        Ok(())
    })?;
    if any_unreadable {
        return Err(crate::exit::Failure::reported(
            Code::Network,
            "some files are not readable now (see above)",
        )
        .into());
    }
    Ok(())
}

/// `mosaic status`: the DHT, the storage nodes, and what each says about us.
pub fn status(g: &Global, net: NetworkArgs, args: ClientArgs) -> Result<()> {
    let (id, table, found, nodes) = with_client(g, &net, &args, |client| async move {
        let table = client.routing().routing_table_size().await.unwrap_or(0);
        // A diagnosis: hear out every DHT node asked, not only the first answers.
        let (found, nodes) = client.all_storage_nodes().await?;
        let statuses = n0_future::join_all(
            nodes
                .iter()
                .map(|n| async { (n.id, n.rtt, client.node_status(n.id, &[]).await) }),
        )
        .await;
        anyhow::Ok((client.id(), table, found, statuses))
    })?;
    let reachable = nodes.iter().filter(|(_, _, s)| s.is_ok()).count();
    let value = json!({
        "identity": id.to_string(),
        "dht_routing_table": table,
        "nodes_announced": found,
        "nodes_reachable": reachable,
        "nodes": nodes.iter().map(|(id, rtt, s)| match s {
            Ok(s) => json!({
                "id": id.to_string(),
                "rtt_ms": rtt.as_secs_f64() * 1000.0,
                "capacity": s.capacity,
                "used": s.used,
                "collectable": s.collectable,
                "blobs": s.blobs,
                "pinned_by_you": s.pinned_by_you,
                "quota": s.quota,
                "announce_backlog": s.announce_backlog,
                "announce_ok": s.announce_ok,
                "version": s.version,
                "health": {
                    "files": s.health.files,
                    "files_checked": s.health.files_checked,
                    "columns_missing": s.health.columns_missing,
                    "repair_backlog": s.health.repair_backlog,
                    "repairs_done": s.health.repairs_done,
                    "repairs_failed": s.health.repairs_failed,
                    "bytes_rebuilt": s.health.bytes_rebuilt,
                    "bytes_scrubbed": s.health.bytes_scrubbed,
                    "corrupt_found": s.health.corrupt_found,
                    "scrub_passes": s.health.scrub_passes,
                },
            }),
            Err(e) => json!({"id": id.to_string(), "error": e.to_string()}),
        }).collect::<Vec<_>>(),
    });
    g.emit(value, || {
        println!("identity      {id}");
        println!(
            "dht           {} peers in the routing table{}",
            table,
            if table == 0 { " (not joined: check --bootstrap)" } else { "" }
        );
        println!("storage nodes {found} announced, {reachable} reachable");
        for (id, rtt, s) in &nodes {
            match s {
                Ok(s) => {
                    println!(
                        "  {}  rtt {:>6.2} ms  used {} of {} ({} collectable)  yours {}{}  announce backlog {}{}",
                        id.fmt_short(),
                        rtt.as_secs_f64() * 1000.0,
                        bytesize::ByteSize(s.used),
                        bytesize::ByteSize(s.capacity),
                        bytesize::ByteSize(s.collectable),
                        bytesize::ByteSize(s.pinned_by_you),
                        s.quota.map(|q| format!(" of quota {}", bytesize::ByteSize(q))).unwrap_or_default(),
                        s.announce_backlog,
                        if s.announce_ok { "" } else { " (last round incomplete)" },
                    );
                    println!("              {}", crate::output::health_line(&s.health));
                }
                Err(e) => println!("  {}  error: {e}", id.fmt_short()),
            }
        }
        Ok(())
    })
}
