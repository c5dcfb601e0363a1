//! `mosaic check` and `mosaic repair`: a file's durability from any client, with no key.
//! A keyring name, a readcap, a public id or a bare file id (hex) names the file; only
//! its id is used.
//!
//! `check` asks the file's holders which columns they have (Tahoe's check);
//! `--verify` also downloads every copy of every column, verified against its hash as
//! it arrives (Tahoe's verify). `repair` asks a holder to repair the file now: the
//! holder knows the file's owners (it keeps their pins), so the rebuilt columns are
//! pinned for them.

use anyhow::Result;
use iroh::EndpointId;
use mosaic_client::{FileHealth, PeerError, Role};
use mosaic_codec::Hash;
use serde_json::json;

use crate::{
    exit::{Code, Failure},
    settings::{ClientArgs, Global, NetworkArgs, with_client},
    uploads::resolve,
};

/// The file id `arg` names: a bare id in hex, a cap, or a keyring name.
fn file_id(arg: &str) -> Result<Hash> {
    if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Hash::from_hex(arg)?);
    }
    Ok(resolve(arg)?.0.id())
}

/// One copy of one blob, and what verifying it found.
struct Copy {
    node: EndpointId,
    verified: Option<Result<u64, PeerError>>,
}

/// `mosaic check FILE [--verify]`.
pub fn check(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    arg: &str,
    verify: bool,
) -> Result<()> {
    let id = file_id(arg)?;
    let (health, copies) = with_client(g, &net, &args, |client| async move {
        let manifest = client.manifest(&id).await?;
        let health = client.file_health(&manifest, &[]).await?;
        let mut copies: Vec<Vec<Copy>> = Vec::new();
        for blob in &health.blobs {
            let checks = blob.places.iter().map(|p| {
                let client = client.clone();
                async move {
                    let verified = if verify {
                        Some(client.verify_blob(p.node, &blob.hash).await)
                    } else {
                        None
                    };
                    Copy {
                        node: p.node,
                        verified,
                    }
                }
            });
            copies.push(n0_future::join_all(checks).await);
        }
        anyhow::Ok((health, copies))
    })?;
    let good = |c: &Copy| !matches!(c.verified, Some(Err(_)));
    let n = health.blobs.len() - 1;
    let healthy = copies[1..].iter().filter(|c| c.iter().any(good)).count();
    let manifest_ok = copies[0].iter().any(good);
    let bad_copies = copies.iter().flatten().filter(|c| !good(c)).count();
    let readable = manifest_ok && healthy >= health.needed;
    let verdict = verdict(&health, healthy, n, readable, bad_copies);
    let value = json!({
        "id": id.to_hex(),
        "columns": n,
        "needed": health.needed,
        "healthy": healthy,
        "readable": readable,
        "verified": verify,
        "verdict": verdict,
        "blobs": health.blobs.iter().zip(&copies).map(|(b, c)| json!({
            "role": b.role.to_string(),
            "hash": b.hash.to_hex(),
            "holders": c.iter().map(|c| {
                let mut v = json!({"node": c.node.to_string()});
                match &c.verified {
                    Some(Ok(size)) => { v["verified"] = json!(true); v["size"] = json!(size); }
                    Some(Err(e)) => { v["verified"] = json!(false); v["error"] = json!(e.to_string()); }
                    None => {}
                }
                v
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "unreachable": health.unreachable.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
    });
    g.emit(value, || {
        println!("file {}: {verdict}", id.fmt_short());
        for (b, c) in health.blobs.iter().zip(&copies) {
            let holders: Vec<String> = c
                .iter()
                .map(|c| {
                    let mark = match &c.verified {
                        None => String::new(),
                        Some(Ok(_)) => " (verified)".into(),
                        Some(Err(e)) => format!(" (BAD: {e})"),
                    };
                    format!("{}{mark}", c.node.fmt_short())
                })
                .collect();
            println!(
                "  {:<10} {}  {}",
                b.role.to_string(),
                b.hash.fmt_short(),
                if holders.is_empty() {
                    "held by no reachable node".to_owned()
                } else {
                    holders.join(" ")
                }
            );
        }
        if !health.unreachable.is_empty() {
            let list: Vec<String> = health
                .unreachable
                .iter()
                .map(|n| n.fmt_short().to_string())
                .collect();
            println!("  announced but unreachable: {}", list.join(" "));
        }
        Ok(())
    })?;
    if !readable {
        return Err(
            Failure::reported(Code::Network, "the file is not readable now (see above)").into(),
        );
    }
    Ok(())
}

fn verdict(health: &FileHealth, healthy: usize, n: usize, readable: bool, bad: usize) -> String {
    let k = health.needed;
    let mut v = if !readable {
        format!(
            "NOT readable: {healthy} of {n} columns have a good copy, {k} are needed; it reads again once enough of their nodes return"
        )
    } else if healthy < n {
        format!(
            "readable, degraded: {healthy} of {n} columns (needs {k}); its holders repair it after their grace period, or now with `mosaic repair`"
        )
    } else {
        format!("healthy: {n} of {n} columns (needs {k})")
    };
    if bad > 0 {
        v.push_str(&format!(
            "; {bad} copies failed verification (their nodes' scrub drops and rebuilds them)"
        ));
    }
    v
}

/// `mosaic repair FILE`.
pub fn repair(g: &Global, net: NetworkArgs, args: ClientArgs, arg: &str) -> Result<()> {
    let id = file_id(arg)?;
    let (node, report) = with_client(g, &net, &args, |client| async move {
        anyhow::Ok(client.ask_repair(&id).await?)
    })?;
    let placed: Vec<(u16, EndpointId)> = report
        .placed
        .iter()
        .filter_map(|(c, n)| Some((*c, EndpointId::from_bytes(n).ok()?)))
        .collect();
    // A report without the file's columns is a node that could not check it at all.
    let repaired = report.columns > 0 && placed.len() == report.missing.len();
    let value = json!({
        "id": id.to_hex(),
        "repairer": node.to_string(),
        "columns": report.columns,
        "missing": report.missing,
        "placed": placed.iter().map(|(c, n)| json!({"column": c, "node": n.to_string()})).collect::<Vec<_>>(),
        "repaired": repaired,
        "message": report.message,
    });
    g.emit(value, || {
        println!(
            "node {} checked file {}: {}",
            node.fmt_short(),
            id.fmt_short(),
            report.message
        );
        for (c, n) in &placed {
            println!(
                "  {} rebuilt on node {}",
                Role::Column(*c as usize),
                n.fmt_short()
            );
        }
        Ok(())
    })?;
    if !repaired {
        let why = if report.columns == 0 {
            format!(
                "node {} could not check the file: {}",
                node.fmt_short(),
                report.message
            )
        } else {
            format!(
                "columns {:?} are still missing: {}",
                report.missing, report.message
            )
        };
        return Err(Failure::reported(Code::Network, why).into());
    }
    Ok(())
}
