//! What a user owns: keys (`key …`, `id`) and the keyring (`ls`, `share`, `rm`,
//! `export`, `import`). Pins are in [`crate::pins`]; what several commands need of the
//! keyring's uploads (resolving a name, recording an upload) in [`crate::uploads`].
//!
//! Every command prints one result: human text by default (the thing a script wants on
//! stdout, notes on stderr), or one JSON value on stdout with `--json`.

use std::{
    io::{IsTerminal, Write},
    path::Path,
    time::UNIX_EPOCH,
};

use anyhow::{Context, Result};
use mosaic_client::UnpinReport;
use mosaic_codec::Cap;
use serde_json::json;

use crate::{
    exit::{Code, fail},
    keyring::{Added, Record},
    keys,
    settings::{ClientArgs, Global, NetworkArgs, keyring, keys, with_client},
    uploads::{as_owner, blobs_to_unpin, node_ids, resolve},
    vault::{
        self, PassphraseArgs,
        format::{BUNDLE_VERSION, Bundle},
    },
};

/// Asks `question` on the terminal; `true` without asking when `yes` or when stdin is
/// not a terminal (scripts decide by running the command).
fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn write_sealed(g: &Global, output: Option<&Path>, sealed: &[u8]) -> Result<()> {
    if g.json && output.is_none() {
        return fail(
            Code::Usage,
            "with --json, stdout carries the report: write the export with -o FILE",
        );
    }
    match output {
        Some(path) => {
            if path.exists() {
                return fail(
                    Code::Refused,
                    format!("{} exists already: choose another file", path.display()),
                );
            }
            keys::write_private(path, sealed)
        }
        None if std::io::stdout().is_terminal() => fail(
            Code::Usage,
            "the export is binary: write it to a file with -o FILE (or redirect stdout)",
        ),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(sealed)?;
            Ok(out.flush()?)
        }
    }
}

fn read_bundle(file: &Path, pass: &PassphraseArgs) -> Result<Bundle> {
    let sealed = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let passphrase = pass.get(false)?;
    let plain = vault::open(&passphrase, &sealed)?;
    let bundle: Bundle = serde_json::from_slice(&plain)
        .with_context(|| format!("{} does not hold a Mosaic export", file.display()))?;
    if bundle.version != BUNDLE_VERSION {
        return fail(
            Code::BadInput,
            format!(
                "{} is a version {} export; this mosaic reads version {BUNDLE_VERSION}: upgrade mosaic",
                file.display(),
                bundle.version
            ),
        );
    }
    Ok(bundle)
}

/// `mosaic key new [NAME]`.
pub fn key_new(g: &Global, name: Option<String>) -> Result<()> {
    let name = name.unwrap_or_else(|| keys::DEFAULT.to_owned());
    let keys = keys()?;
    let path = keys.create(&name)?;
    let id = if name == keys::CONVERGENCE {
        None
    } else {
        Some(keys.identity(&name)?.public().to_string())
    };
    g.emit(json!({"name": name, "id": id, "path": path}), || {
        match &id {
            Some(id) => println!("{id}"),
            None => eprintln!("created a convergence secret"),
        }
        eprintln!("key {name:?} is in {}", path.display());
        Ok(())
    })
}

/// `mosaic key list`.
pub fn key_list(g: &Global) -> Result<()> {
    let current = g.key_name();
    let list = keys()?.list()?;
    let rows: Vec<_> = list
        .iter()
        .map(|(name, kind, id)| {
            json!({
                "name": name,
                "kind": kind,
                "id": id.as_ref().ok().filter(|s| !s.is_empty()),
                "error": id.as_ref().err().map(ToString::to_string),
                "in_use": *name == current,
            })
        })
        .collect();
    g.emit(json!(rows), || {
        if list.is_empty() {
            eprintln!("no keys yet: `mosaic key new` makes one (the first upload does too)");
        }
        for (name, kind, id) in &list {
            let mark = if *name == current { "*" } else { " " };
            match (kind, id) {
                (_, Err(e)) => println!("{mark} {name:<16} error: {e}"),
                (keys::Kind::Convergence, Ok(_)) => {
                    println!("{mark} {name:<16} (convergence secret)")
                }
                (keys::Kind::Identity, Ok(id)) => println!("{mark} {name:<16} {id}"),
                (keys::Kind::Name, Ok(key)) => println!("  {name:<16} {key} (name)"),
            }
        }
        Ok(())
    })
}

/// `mosaic key export NAME`.
pub fn key_export(
    g: &Global,
    name: &str,
    output: Option<&Path>,
    pass: &PassphraseArgs,
) -> Result<()> {
    let key = keys()?.export(name)?;
    let passphrase = pass.get(true)?;
    let bundle = Bundle {
        version: BUNDLE_VERSION,
        keys: vec![key],
        files: vec![],
    };
    write_sealed(
        g,
        output,
        &vault::seal(&passphrase, &serde_json::to_vec(&bundle)?)?,
    )?;
    g.emit(json!({"exported": name, "output": output}), || {
        eprintln!("exported key {name:?}, sealed under your passphrase");
        Ok(())
    })
}

/// `mosaic key import FILE`.
pub fn key_import(
    g: &Global,
    file: &Path,
    name: Option<&str>,
    pass: &PassphraseArgs,
) -> Result<()> {
    let bundle = read_bundle(file, pass)?;
    if name.is_some() && bundle.keys.len() > 1 {
        return fail(
            Code::Usage,
            "--name renames a single key, and this file holds several",
        );
    }
    let keys = keys()?;
    let mut imported = Vec::new();
    for key in &bundle.keys {
        let written = keys.import(key, name)?;
        let shown = match key.kind {
            keys::Kind::Convergence => keys::CONVERGENCE,
            keys::Kind::Identity | keys::Kind::Name => name.unwrap_or(&key.name),
        };
        imported.push(json!({"name": shown, "new": written}));
    }
    g.emit(json!({"imported": imported}), || {
        for k in &imported {
            let state = if k["new"] == json!(true) {
                "imported"
            } else {
                "already here"
            };
            eprintln!("key {}: {state}", k["name"]);
        }
        Ok(())
    })
}

/// `mosaic key rm NAME`.
pub fn key_rm(g: &Global, name: &str, yes: bool) -> Result<()> {
    let keys = keys()?;
    if !keys.exists(name) {
        // Says there is no such key, without asking first.
        return keys.remove(name).map(drop);
    }
    if !confirm(
        &format!(
            "Delete key {name:?}? Files pinned with it can no longer be unpinned or listed as yours, unless you exported it."
        ),
        yes,
    )? {
        return fail(Code::Refused, "nothing was deleted");
    }
    let path = keys.remove(name)?;
    g.emit(json!({"removed": name}), || {
        eprintln!("deleted {}", path.display());
        Ok(())
    })
}

/// `mosaic export`: every key and keyring entry in one sealed file.
pub fn export(g: &Global, output: Option<&Path>, pass: &PassphraseArgs) -> Result<()> {
    let keys = keys()?;
    let bundle = Bundle {
        version: BUNDLE_VERSION,
        keys: keys
            .list()?
            .iter()
            .map(|(name, _, _)| keys.export(name))
            .collect::<Result<_>>()?,
        files: keyring()?.list()?,
    };
    let passphrase = pass.get(true)?;
    write_sealed(
        g,
        output,
        &vault::seal(&passphrase, &serde_json::to_vec(&bundle)?)?,
    )?;
    let (k, f) = (bundle.keys.len(), bundle.files.len());
    g.emit(json!({"keys": k, "files": f, "output": output}), || {
        eprintln!("exported {k} keys and {f} keyring entries, sealed under your passphrase");
        Ok(())
    })
}

/// `mosaic import FILE`: adds what an export holds; an entry or key already here is
/// kept, a name taken by something else gets a number (files: `NAME (2)`, as `put`
/// does) or is skipped (keys).
pub fn import(g: &Global, file: &Path, pass: &PassphraseArgs) -> Result<()> {
    let bundle = read_bundle(file, pass)?;
    let keys = keys()?;
    let ring = keyring()?;
    let mut notes = Vec::new();
    let mut new_keys = 0;
    for key in &bundle.keys {
        match keys.import(key, None) {
            Ok(true) => new_keys += 1,
            Ok(false) => {}
            Err(e) => notes.push(format!("key {:?} skipped: {e}", key.name)),
        }
    }
    let mut new_files = 0;
    for record in bundle.files {
        let mut record = record;
        match ring.add(&mut record, false)? {
            Added::Existing => {}
            Added::Renamed { taken } => {
                notes.push(format!(
                    "{taken:?} exists here with another file: imported as {:?}",
                    record.name
                ));
                new_files += 1;
            }
            Added::New | Added::Replaced(_) => new_files += 1,
        }
    }
    g.emit(
        json!({"keys": new_keys, "files": new_files, "notes": notes}),
        || {
            for n in &notes {
                eprintln!("note: {n}");
            }
            eprintln!("imported {new_keys} keys and {new_files} keyring entries");
            Ok(())
        },
    )
}

/// `mosaic id`: prints this client's identity (creating the default one if needed).
pub fn client_id(g: &Global) -> Result<()> {
    let name = g.key_name();
    let id = keys()?.identity(&name)?.public();
    g.emit(
        serde_json::json!({"key": name, "id": id.to_string()}),
        || {
            println!("{id}");
            Ok(())
        },
    )
}

/// `mosaic ls`.
pub fn ls(g: &Global) -> Result<()> {
    let records = keyring()?.list()?;
    g.emit(serde_json::to_value(&records)?, || {
        if records.is_empty() {
            eprintln!("your keyring is empty: `mosaic put FILE` uploads and records a file");
        }
        for r in &records {
            println!(
                "{:<32} {:>10}  {}  {} nodes  {}",
                r.name,
                bytesize::ByteSize(r.size).to_string(),
                humantime::format_rfc3339_seconds(
                    UNIX_EPOCH + std::time::Duration::from_secs(r.created)
                ),
                r.nodes.len(),
                r.kind
            );
        }
        Ok(())
    })
}

/// The link for `cap`. A private file's link is the share page with the readcap in the
/// fragment (`/s/#CAP/NAME`): browsers never send a fragment, so the gateway, proxies
/// and `Referer` never see the key, and the page decrypts. `gateway_decrypts` gives the
/// older `/f/CAP/NAME`, where the gateway decrypts (and sees the key).
fn gateway_link(base: &str, cap: &Cap, record: Option<&Record>, gateway_decrypts: bool) -> String {
    let base = base.trim_end_matches('/');
    let name = record.map(|r| r.name.as_str()).unwrap_or("");
    let encoded = percent_encode(name);
    match cap {
        Cap::Read(c) if gateway_decrypts && name.is_empty() => format!("{base}/f/{c}"),
        Cap::Read(c) if gateway_decrypts => format!("{base}/f/{c}/{encoded}"),
        Cap::Read(c) if name.is_empty() => format!("{base}/s/#{c}"),
        Cap::Read(c) => format!("{base}/s/#{c}/{encoded}"),
        Cap::Public(p) if record.is_some_and(|r| r.kind == "directory") => format!("{base}/p/{p}/"),
        Cap::Public(p) => format!("{base}/p/{p}"),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `mosaic share NAME`: the cap and a gateway URL.
pub fn share(g: &Global, arg: &str, gateway_url: &str, gateway_decrypts: bool) -> Result<()> {
    let (cap, record) = resolve(arg)?;
    let url = gateway_link(gateway_url, &cap, record.as_ref(), gateway_decrypts);
    g.emit(json!({"cap": cap.to_string(), "url": url}), || {
        println!("{cap}");
        println!("{url}");
        if matches!(cap, Cap::Read(_)) {
            if gateway_decrypts {
                eprintln!(
                    "note: the readcap and the URL hold the file's key: anyone with them can read it, and the gateway (its logs, proxies in front of it) sees it"
                );
            } else {
                eprintln!(
                    "note: the readcap and the link hold the file's key (after '#', which browsers never send): anyone with the link can read the file; the gateway cannot"
                );
            }
        }
        Ok(())
    })
}

/// `mosaic rm NAME`: unpins on the nodes, then forgets locally.
pub fn rm(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    name: &str,
    yes: bool,
    force: bool,
) -> Result<()> {
    let record = keyring()?.require(name)?;
    let cap: Cap = record.cap.parse()?;
    if !confirm(
        &format!("Unpin {name:?} from the nodes and forget its readcap?"),
        yes,
    )? {
        return fail(Code::Refused, "nothing was removed");
    }
    let extra = node_ids(&record.nodes);
    let (owner, key) = as_owner(g, Some(&record))?;
    let outcome = with_client(&owner, &net, &args, |client| {
        let record = record.clone();
        async move {
            let blobs = blobs_to_unpin(&client, &record, &cap, &key).await?;
            anyhow::Ok(client.unpin_blobs(&blobs, &extra).await?)
        }
    });
    let (report, note) = match outcome {
        Ok(r) => (r, None),
        Err(e) if force => (UnpinReport::default(), Some(format!("{e:#}"))),
        Err(e) => return Err(e.context("nothing was forgotten; --force forgets it anyway")),
    };
    let mut problems = report.problems();
    problems.extend(note);
    if !report.failed.is_empty() && !force {
        return fail(
            Code::Network,
            format!(
                "{} nodes could not be told to unpin {name:?} ({}); it stays in your keyring: retry, or pass --force to forget it anyway",
                report.failed.len(),
                problems.join("; ")
            ),
        );
    }
    keyring()?.remove(name)?;
    g.emit(
        json!({"removed": name, "unpinned_on": report.done.len(), "problems": problems}),
        || {
            for p in &problems {
                eprintln!("warning: {p}");
            }
            eprintln!(
                "unpinned {name:?} on {} nodes and forgot it",
                report.done.len()
            );
            Ok(())
        },
    )
}
