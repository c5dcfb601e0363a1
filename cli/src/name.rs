//! `mosaic name …`: mutable names (BEP 44 records on the DHT; see
//! `mosaic_codec::name`). A name key lives with the other keys (`NAME.name`, exported
//! and imported with them); what was last published under it is in the keyring.
//!
//! Each command prints its one result on the last line of stdout (a name key, a
//! target), or one JSON value with `--json`.

use anyhow::Result;
use mosaic_codec::{
    Cap,
    name::{NameKey, NameRef, Pointer, ReadKey, SealedName},
};
use mosaic_wire::record::SigningKey;
use serde_json::json;

use crate::{
    keyring::Published,
    settings::{ClientArgs, Global, NetworkArgs, keyring, keys, with_client},
    uploads::resolve,
};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The public key, read key and signer of name key `name`.
fn name_keys(name: &str) -> Result<(NameKey, ReadKey, SigningKey)> {
    let secret = keys()?.name_secret(name)?;
    let signer = SigningKey::from_bytes(&secret);
    let key = NameKey(signer.verifying_key().to_bytes());
    Ok((key, ReadKey::of_secret(&secret), signer))
}

/// `mosaic name new NAME`.
pub fn new(g: &Global, name: &str) -> Result<()> {
    keys()?.create_name(name)?;
    let (key, _, _) = name_keys(name)?;
    g.emit(json!({"name": name, "key": key.to_string()}), || {
        eprintln!(
            "name {name:?} created; publish with `mosaic name publish {name} TARGET`; readers resolve:"
        );
        println!("{key}");
        Ok(())
    })
}

/// `mosaic name publish NAME TARGET [--path P] [--private]`.
pub fn publish(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    name: &str,
    target: &str,
    path: &str,
    private: bool,
) -> Result<()> {
    let (key, read, signer) = name_keys(name)?;
    let (cap, _) = resolve(target)?;
    // A readcap is a key: it is only ever published sealed.
    let private = private || matches!(cap, Cap::Read(_));
    let pointer = Pointer {
        target: cap.clone(),
        path: path.trim_start_matches('/').to_owned(),
    };
    let sealed = private.then_some(&read);
    // Refused here (too large, a bad path) before the network is joined.
    pointer.encode(&key, sealed, [0; 24])?;
    let published = with_client(g, &net, &args, |client| {
        let pointer = pointer.clone();
        async move { Ok(client.publish_name(&signer, &pointer, sealed).await?) }
    })?;
    keyring()?.put_published(&Published {
        name: name.to_owned(),
        target: cap.to_string(),
        path: pointer.path.clone(),
        private,
        seq: published.record.seq,
        published: now(),
    })?;
    let shown = if private {
        NameRef::Sealed(SealedName { key, read })
    } else {
        NameRef::Public(key)
    };
    let dht = match &published.dht {
        Some(Ok(())) => "stored".to_owned(),
        Some(Err(e)) => format!("failed: {e}"),
        None => "left to the nodes (relay-only mode)".to_owned(),
    };
    g.emit(
        json!({
            "name": name,
            "key": key.to_string(),
            "resolve_with": shown.to_string(),
            "private": private,
            "seq": published.record.seq,
            "target": cap.to_string(),
            "path": pointer.path,
            "dht": dht,
            "kept_by": published.kept_by.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "refused": published.refused.iter().map(|(n, e)| json!({"node": n.to_string(), "error": e.to_string()})).collect::<Vec<_>>(),
        }),
        || {
            for (node, e) in &published.refused {
                eprintln!("note: node {} did not keep the record: {e}", node.fmt_short());
            }
            eprintln!(
                "published {name:?} (sequence {}): DHT {dht}; kept and republished by {} nodes holding the target",
                published.record.seq,
                published.kept_by.len()
            );
            if private {
                eprintln!(
                    "this name is private: share the ms1… form below (it opens the record); the mn1… key alone does not"
                );
            }
            println!("{shown}");
            Ok(())
        },
    )
}

/// `mosaic name resolve KEY`: KEY is `mn1…`, `ms1…`, or one of this user's names.
pub fn resolve_name(g: &Global, net: NetworkArgs, args: ClientArgs, arg: &str) -> Result<()> {
    let name: NameRef = match arg.parse() {
        Ok(n) => n,
        Err(e)
            if ["mn1", "ms1"]
                .iter()
                .any(|p| arg.trim().to_ascii_lowercase().starts_with(p)) =>
        {
            return Err(e.into());
        }
        Err(_) => {
            let (key, read, _) = name_keys(arg)?;
            NameRef::Sealed(SealedName { key, read })
        }
    };
    let resolved = with_client(g, &net, &args, |client| {
        let name = name.clone();
        async move { Ok(client.resolve_name(&name).await?) }
    })?;
    let target = resolved.pointer.target.to_string();
    let path = &resolved.pointer.path;
    let line = if path.is_empty() {
        target.clone()
    } else {
        format!("{target}/{path}")
    };
    g.emit(
        json!({
            "key": name.key().to_string(),
            "seq": resolved.record.seq,
            "private": Pointer::is_sealed(&resolved.record.value),
            "target": target,
            "path": path,
        }),
        || {
            eprintln!(
                "name {} (sequence {}) points to:",
                name.key(),
                resolved.record.seq
            );
            println!("{line}");
            Ok(())
        },
    )
}

/// `mosaic name ls`: this user's names and what each last published.
pub fn ls(g: &Global) -> Result<()> {
    let ring = keyring()?;
    let mut rows = Vec::new();
    for (name, kind, key) in keys()?.list()? {
        if kind != crate::keys::Kind::Name {
            continue;
        }
        let last = ring.published(&name)?;
        rows.push(json!({
            "name": name,
            "key": key.as_ref().ok(),
            "error": key.as_ref().err().map(ToString::to_string),
            "target": last.as_ref().map(|p| &p.target),
            "path": last.as_ref().map(|p| &p.path),
            "private": last.as_ref().map(|p| p.private),
            "seq": last.as_ref().map(|p| p.seq),
            "published": last.as_ref().map(|p| p.published),
        }));
    }
    g.emit(json!(rows), || {
        if rows.is_empty() {
            eprintln!("no names yet: `mosaic name new NAME` makes one");
        }
        for r in &rows {
            let name = r["name"].as_str().unwrap_or("");
            let key = r["key"].as_str().unwrap_or("(unreadable key)");
            match r["target"].as_str() {
                Some(t) => {
                    let private = if r["private"] == json!(true) {
                        " (private)"
                    } else {
                        ""
                    };
                    println!("{name:<16} {key} -> {t}{private}");
                }
                None => println!("{name:<16} {key} (not published)"),
            }
        }
        Ok(())
    })
}
