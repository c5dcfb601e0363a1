//! Moving files: `put` (one file, or a directory tree as a static site), `get`, and
//! `nodes` (where files can go). Each runs the client's pipeline
//! (`mosaic_client::Client::put`, `get`) with a progress bar, then records or reports
//! the result.

use std::{
    collections::BTreeSet,
    fs,
    io::{self, BufWriter, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use iroh::EndpointId;
use mosaic_client::{
    Client,
    dir::{Directory, Entry as DirEntry},
    file_blobs,
};
use mosaic_codec::{Access, Cap, Params, PublicId, ReadCap};

use crate::settings::{ClientArgs, Global, NetworkArgs, with_client};

/// A byte progress bar on stderr when it is a terminal (and not `--json`); hidden
/// otherwise, so pipes and logs stay clean.
fn progress_bar(g: &Global, len: u64, verb: &str) -> ProgressBar {
    if g.json || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(verb.to_owned());
    bar
}

/// A writer that advances a progress bar.
struct Progress<W> {
    inner: W,
    bar: ProgressBar,
}

impl<W: Write> Write for Progress<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What `put` encodes.
#[derive(Debug, Clone)]
pub struct PutSpec {
    /// The file.
    pub file: PathBuf,
    /// Coding parameters.
    pub params: Params,
    /// Public or private.
    pub public: bool,
    /// Convergent key.
    pub convergent: bool,
    /// Media type override.
    pub media_type: Option<String>,
    /// The keyring name [default: the file name].
    pub name: Option<String>,
    /// Replace the keyring entry of that name, if any.
    pub replace: bool,
    /// Upload even if the keyring holds the same content under that name.
    pub copy: bool,
}

/// BLAKE3 of the file at `path` (hex), read in a stream.
fn content_hash(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(&mut file)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// `put` of content the keyring already holds under that name: says where, uploads
/// nothing, and prints the entry's cap as a put would.
fn already_stored(g: &Global, requested: &str, entry: &crate::keyring::Record) -> Result<()> {
    let cap: Cap = entry.cap.parse()?;
    let value = serde_json::json!({
        "cap": entry.cap,
        "size": entry.size,
        "id": cap.id().to_hex(),
        "nodes": entry.nodes,
        "name": entry.name,
        "requested_name": requested,
        "keyring": "existing",
        "replaced": serde_json::Value::Null,
        "uploaded": false,
    });
    g.emit(value, || {
        eprintln!(
            "already stored as {:?} (the same content, {}, pinned by {:?}): nothing uploaded. `mosaic check {:?}` shows its health; `put --copy` stores another copy",
            entry.name,
            if matches!(cap, Cap::Public(_)) { "public" } else { "private" },
            entry.key,
            entry.name,
        );
        println!("{}", entry.cap);
        Ok(())
    })
}

/// The keyring name asked for an upload of `path`. Whether it is free is decided when
/// the upload is recorded ([`record`]): a taken one is never refused.
fn upload_name(name: Option<String>, path: &Path) -> Result<String> {
    let name = match name {
        Some(n) => n,
        None => path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .ok_or_else(|| anyhow!("{} has no usable name: pass --name", path.display()))?,
    };
    if name.is_empty() {
        return crate::exit::fail(
            crate::exit::Code::BadInput,
            "a keyring name cannot be empty: pass another --name",
        );
    }
    // Read now, so an unusable keyring fails the put before any byte is sent.
    crate::settings::keyring()?;
    Ok(name)
}

/// Records an upload in the keyring ([`Keyring::add`]); returns the name it got, what
/// the JSON answer says about it, and the notes for humans. A replaced entry's file is
/// unpinned (see [`crate::uploads::unpin_replaced`]).
///
/// [`Keyring::add`]: crate::keyring::Keyring::add
fn record(
    g: &Global,
    net: &NetworkArgs,
    args: &ClientArgs,
    upload: &crate::uploads::Upload<'_>,
    replace: bool,
) -> Result<(String, serde_json::Value, Vec<String>)> {
    use crate::keyring::Added;
    let (entry, added) = crate::uploads::record_upload(upload, replace)?;
    let name = entry.name.clone();
    let mut notes = Vec::new();
    let mut replaced = serde_json::Value::Null;
    let outcome = match &added {
        Added::New => "added",
        Added::Renamed { taken } => {
            notes.push(format!(
                "note: {taken:?} in your keyring holds another file, left as it is; this upload is {name:?} (--replace replaces the entry instead)"
            ));
            "renamed"
        }
        Added::Existing => {
            notes.push(format!(
                "note: the same file, pinned by the same identity, was in your keyring already as {name:?}: nothing was added"
            ));
            "existing"
        }
        Added::Replaced(old) => {
            let unpin = crate::uploads::unpin_replaced(g, net, args, old);
            notes.push(format!(
                "replaced {name:?} in your keyring: it held {} ({} bytes, {}), now unpinned on {} nodes (blobs still in use stay pinned)",
                old.cap,
                old.size,
                old.kind,
                unpin.unpinned_on
            ));
            for p in &unpin.problems {
                notes.push(format!(
                    "warning: unpinning the replaced file: {p}; its pins there stay until `mosaic pin rm {}`",
                    old.cap
                ));
            }
            replaced = serde_json::json!({
                "cap": old.cap,
                "size": old.size,
                "kind": old.kind,
                "created": old.created,
                "unpinned_on": unpin.unpinned_on,
                "problems": unpin.problems,
            });
            "replaced"
        }
    };
    let value = serde_json::json!({
        "name": name,
        "requested_name": upload.name,
        "keyring": outcome,
        "replaced": replaced,
    });
    Ok((name, value, notes))
}

/// `a` with the fields of the object `b` added.
fn merged(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// `mosaic put`: uploads, prints the cap, records the upload in the keyring.
pub fn put(g: &Global, net: NetworkArgs, args: ClientArgs, spec: PutSpec) -> Result<()> {
    let meta =
        fs::metadata(&spec.file).with_context(|| format!("cannot open {}", spec.file.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file (a directory needs -r --public)",
            spec.file.display()
        );
    }
    let name = upload_name(spec.name.clone(), &spec.file)?;
    let key_name = g.key_name();
    let metadata = crate::files::metadata_for(&spec.file, &meta, spec.media_type.clone());
    let access = crate::files::access_for(
        &spec.file,
        meta.len(),
        spec.params,
        spec.public,
        spec.convergent,
    )?;
    // The same content under this name (or, with --replace, in this very entry),
    // public or private as asked, pinned by the same identity: nothing to upload. The
    // file is hashed first only when such an entry has its size.
    let same_upload = |r: &crate::keyring::Record| {
        r.kind == "file"
            && r.key == key_name
            && r.size == meta.len()
            && !r.content.is_empty()
            && r.cap
                .parse::<Cap>()
                .is_ok_and(|c| matches!(c, Cap::Public(_)) == spec.public)
    };
    let ring = crate::settings::keyring()?;
    let mut content = None;
    if !spec.copy
        && ring
            .find_in_series(&name, "file", spec.replace, same_upload)?
            .is_some()
    {
        let hash = content_hash(&spec.file)?;
        if let Some(entry) = ring.find_in_series(&name, "file", spec.replace, |r| {
            same_upload(r) && r.content == hash
        })? {
            return already_stored(g, &name, &entry);
        }
        content = Some(hash);
    }
    drop(ring);
    let bar = progress_bar(g, meta.len(), "put");
    let report = with_client(g, &net, &args, |client| {
        let (bar, access) = (bar.clone(), access.clone());
        let file = spec.file.clone();
        let content = content.clone();
        async move {
            // Hashed beside the upload (the keyring keeps it for the next put).
            let hashing = {
                let file = file.clone();
                tokio::task::spawn_blocking(move || content.map_or_else(|| content_hash(&file), Ok))
            };
            let counter = Arc::new(AtomicU64::new(0));
            let ticker = tokio::spawn({
                let (bar, counter) = (bar.clone(), counter.clone());
                async move {
                    loop {
                        bar.set_position(counter.load(Ordering::Relaxed));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
            let report = client
                .put_counting(&file, spec.params, access, metadata, counter)
                .await;
            ticker.abort();
            // A file that cannot be hashed was still uploaded: it is recorded without.
            let content = hashing.await.ok().and_then(Result::ok).unwrap_or_default();
            Ok((report?, content))
        }
    });
    bar.finish_and_clear();
    let (report, content) = report?;
    let id = report.manifest.id();
    let cap = match &access {
        Access::Public => Cap::Public(PublicId { id }),
        Access::Private(key) => Cap::Read(ReadCap {
            id,
            key: key.clone(),
        }),
    };
    let nodes: BTreeSet<EndpointId> = report.placement.iter().copied().collect();
    let blobs = file_blobs(&report.manifest);
    let upload = crate::uploads::Upload {
        name: &name,
        cap: &cap,
        size: meta.len(),
        kind: "file",
        key: &key_name,
        blobs: &blobs,
        nodes: &nodes,
        content,
    };
    let (name, entry, notes) = record(g, &net, &args, &upload, spec.replace)?;
    let value = serde_json::json!({
        "cap": cap.to_string(),
        "size": meta.len(),
        "id": id.to_hex(),
        "nodes": nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "uploaded": true,
    });
    g.emit(merged(value, entry), || {
        for note in &notes {
            eprintln!("{note}");
        }
        eprintln!(
            "stored {} ({} bytes) as {} columns on {} nodes; any {} rebuild it; in your keyring as {name:?}",
            spec.file.display(),
            meta.len(),
            spec.params.columns(),
            report.placement.len(),
            spec.params.data_columns()
        );
        println!("{cap}");
        Ok(())
    })
}

/// `mosaic put -r DIR --public`: every regular file under `dir` as a public file, then
/// the directory index (see `mosaic_node::dir`); prints the directory's public id and
/// records it in the keyring (with every file's blobs, so `rm` unpins them all).
pub fn put_dir(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    dir: &Path,
    params: Params,
    name: Option<String>,
    replace: bool,
) -> Result<()> {
    if !fs::metadata(dir)
        .with_context(|| format!("cannot open {}", dir.display()))?
        .is_dir()
    {
        bail!(
            "{} is not a directory (without -r, put uploads one file)",
            dir.display()
        );
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!("{} holds no regular file to upload", dir.display());
    }
    let name = upload_name(name, dir)?;
    let key_name = g.key_name();
    let total_size: u64 = files
        .iter()
        .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let quiet = g.json;
    let index_name = name.clone();
    let key_for_undo = key_name.clone();
    let (id, blobs, nodes) = with_client(g, &net, &args, |client| async move {
        let mut blobs = Vec::new();
        let mut nodes = BTreeSet::new();
        let uploaded = upload_tree(
            &client, &files, params, index_name, quiet, &mut blobs, &mut nodes,
        )
        .await;
        match uploaded {
            Ok(id) => anyhow::Ok((id, blobs, nodes)),
            Err(e) => {
                // Nothing half-uploaded stays pinned, except what other keyring entries
                // of this identity use (a pin is one per blob and owner).
                let extra: Vec<EndpointId> = nodes.iter().copied().collect();
                let in_use = crate::uploads::blobs_in_use(&key_for_undo)?;
                blobs.retain(|h| !in_use.contains(&h.to_hex()));
                let undone = client.unpin_blobs(&blobs, &extra).await;
                let note = match undone {
                    Ok(r) if r.failed.is_empty() => {
                        "the files already uploaded were unpinned again"
                    }
                    _ => {
                        "unpinning the files already uploaded failed on some nodes; they will stay until their pins are removed"
                    }
                };
                Err(e.context(note))
            }
        }
    })?;
    let cap = Cap::Public(id);
    let upload = crate::uploads::Upload {
        name: &name,
        cap: &cap,
        size: total_size,
        kind: "directory",
        key: &key_name,
        blobs: &blobs,
        nodes: &nodes,
        content: String::new(),
    };
    let (name, entry, notes) = record(g, &net, &args, &upload, replace)?;
    g.emit(
        merged(
            serde_json::json!({"cap": cap.to_string(), "size": total_size}),
            entry,
        ),
        || {
            for note in &notes {
                eprintln!("{note}");
            }
            eprintln!(
                "stored directory {} as {id}; in your keyring as {name:?}",
                dir.display()
            );
            println!("{id}");
            Ok(())
        },
    )
}

/// Uploads every file, then the index; adds every blob and node to `blobs` and `nodes`
/// as it goes (so a failure can be undone).
async fn upload_tree(
    client: &Client,
    files: &[(String, PathBuf)],
    params: Params,
    index_name: String,
    quiet: bool,
    blobs: &mut Vec<mosaic_codec::Hash>,
    nodes: &mut BTreeSet<EndpointId>,
) -> Result<PublicId> {
    let mut index = Directory::new();
    let total = files.len();
    for (i, (rel, path)) in files.iter().enumerate() {
        let meta = fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let metadata = crate::files::metadata_for(path, &meta, None);
        let report = client
            .put(path, params, Access::Public, metadata)
            .await
            .with_context(|| format!("uploading {rel}"))?;
        let id = PublicId {
            id: report.manifest.id(),
        };
        if !quiet {
            eprintln!("[{}/{total}] {rel}  {id}", i + 1);
        }
        blobs.extend(file_blobs(&report.manifest));
        nodes.extend(report.placement.iter().copied());
        index.insert(
            rel,
            DirEntry {
                id,
                size: meta.len(),
            },
        )?;
    }
    let tmp = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    fs::write(tmp.path(), index.to_bytes())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let metadata = mosaic_codec::Metadata {
        name: Some(index_name),
        media_type: Some(mosaic_client::dir::MEDIA_TYPE.to_owned()),
        modified: None,
    };
    let report = client
        .put(tmp.path(), params, Access::Public, metadata)
        .await
        .context("uploading the directory index")?;
    blobs.splice(0..0, file_blobs(&report.manifest));
    nodes.extend(report.placement.iter().copied());
    Ok(PublicId {
        id: report.manifest.id(),
    })
}

/// Collects the regular files under `dir` as (path relative to `root` with `/`, path).
/// Symbolic links are skipped (with a note): a directory upload is what is there.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .iter()
                .map(|c| {
                    c.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("{} has a name that is not UTF-8", path.display()))
                })
                .collect::<Result<Vec<_>>>()?
                .join("/");
            out.push((rel, path));
        } else {
            eprintln!("skipping {} (not a regular file)", path.display());
        }
    }
    Ok(())
}

/// `mosaic nodes`: storage nodes found on the DHT and how they answer.
pub fn nodes(g: &Global, net: NetworkArgs, args: ClientArgs) -> Result<()> {
    let (found, nodes) = with_client(g, &net, &args, |client| async move {
        Ok(client.storage_nodes().await?)
    })?;
    let value = serde_json::json!({
        "announced": found,
        "nodes": nodes.iter().map(|n| serde_json::json!({
            "id": n.id.to_string(),
            "rtt_ms": n.rtt.as_secs_f64() * 1000.0,
            "used": n.used,
            "capacity": n.capacity,
        })).collect::<Vec<_>>(),
    });
    g.emit(value, || {
        eprintln!("{found} storage nodes announced, {} reachable", nodes.len());
        for n in &nodes {
            println!(
                "{}  rtt {:>7.2} ms  used {} of {}",
                n.id,
                n.rtt.as_secs_f64() * 1000.0,
                bytesize::ByteSize(n.used),
                bytesize::ByteSize(n.capacity)
            );
        }
        Ok(())
    })
}

/// `mosaic get CAP|ID|NAME`.
pub fn get(
    g: &Global,
    net: NetworkArgs,
    args: ClientArgs,
    target: &str,
    output: Option<&Path>,
) -> Result<()> {
    let (cap, _) = crate::uploads::resolve(target)?;
    if g.json && output.is_none() {
        return crate::exit::fail(
            crate::exit::Code::Usage,
            "with --json, stdout carries the report: write the file with -o OUT",
        );
    }
    let size = std::cell::Cell::new(0u64);
    let bar = progress_bar(g, 0, "get");
    let report = with_client(g, &net, &args, |client| {
        let bar = bar.clone();
        let size = &size;
        async move {
            // The manifest, found and fetched once: its length sizes the progress bar.
            let file = client.open(&cap).await?;
            let length = file.layout().length();
            size.set(length);
            bar.set_length(length);
            let report = match output {
                None => {
                    let mut out = Progress {
                        inner: BufWriter::with_capacity(1 << 20, io::stdout()),
                        bar,
                    };
                    client.get(file, &mut out).await?
                }
                Some(path) => {
                    let mut out = Progress {
                        inner: crate::output::AtomicFile::create(path)?,
                        bar,
                    };
                    let report = client.get(file, &mut out).await?;
                    out.inner.commit()?;
                    report
                }
            };
            anyhow::Ok(report)
        }
    });
    bar.finish_and_clear();
    let report = report?;
    let value = serde_json::json!({
        "size": size.get(),
        "output": output,
        "failovers": report.failovers,
    });
    g.emit(value, || {
        if report.failovers > 0 {
            eprintln!(
                "note: {} column fetches failed over to other nodes",
                report.failovers
            );
        }
        Ok(())
    })
}
