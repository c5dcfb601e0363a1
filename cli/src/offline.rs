//! The offline commands over a local blob directory ([`BlobDir`]), handy without a
//! network: `encode`, `decode`, `inspect`.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::Path,
};

use anyhow::{Context, Result, anyhow, bail};
use mosaic_codec::{
    Access, Cap, DecodeReport, Decoder, Hash, MAX_MANIFEST_LEN, Manifest, Params, PublicId,
    ReadCap, decode_file, decode_range, encode,
};

use crate::{blob_dir::BlobDir, files, settings::Global};

/// `mosaic encode FILE`: encodes into the blob directory and prints the cap.
pub(crate) fn cmd_encode(
    g: &Global,
    blobs: &BlobDir,
    path: &Path,
    params: Params,
    public: bool,
    convergent: bool,
    media_type: Option<String>,
) -> Result<()> {
    let open = || File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let file = open()?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let length = meta.len();
    let metadata = files::metadata_for(path, &meta, media_type);
    let access = files::access_for(path, length, params, public, convergent)?;

    let n = params.columns();
    let mut temps = Vec::with_capacity(n);
    let mut writers = Vec::with_capacity(n);
    for j in 0..n {
        let (tmp, f) = blobs.temp_file(&format!("col{j}"))?;
        temps.push(tmp);
        writers.push(BufWriter::with_capacity(1 << 20, f));
    }
    let result = encode(
        params,
        &access,
        &metadata,
        length,
        io::BufReader::new(file),
        &mut writers,
    );
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            for t in &temps {
                let _ = fs::remove_file(t);
            }
            return Err(e).with_context(|| format!("cannot encode {}", path.display()));
        }
    };
    for ((tmp, w), hash) in temps.iter().zip(writers).zip(manifest.columns()) {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        blobs.commit(tmp, f, hash)?;
    }
    let (tmp, mut f) = blobs.temp_file("manifest")?;
    f.write_all(manifest.as_bytes())?;
    blobs.commit(&tmp, f, &manifest.id())?;

    let cap = match &access {
        Access::Public => PublicId { id: manifest.id() }.to_string(),
        Access::Private(key) => ReadCap {
            id: manifest.id(),
            key: key.clone(),
        }
        .to_string(),
    };
    let value = serde_json::json!({
        "cap": cap,
        "id": manifest.id().to_hex(),
        "size": length,
        "columns": manifest.columns().iter().map(Hash::to_hex).collect::<Vec<_>>(),
    });
    g.emit(value, || {
        eprintln!(
            "encoded {} ({length} bytes) into {n} columns ({}+{}), any {} rebuild it; file id {}",
            path.display(),
            params.data_columns(),
            params.parity_columns(),
            params.data_columns(),
            manifest.id().fmt_short(),
        );
        println!("{cap}");
        Ok(())
    })
}

fn load_manifest(blobs: &BlobDir, id: &Hash) -> Result<Manifest> {
    let bytes = blobs.read_small(id, MAX_MANIFEST_LEN)?.ok_or_else(|| {
        anyhow!(
            "file {} is not in the local blob directory: its manifest blob is missing",
            id.fmt_short()
        )
    })?;
    Ok(Manifest::from_bytes_verified(&bytes, id)?)
}

pub(crate) fn cmd_decode(
    blobs: &BlobDir,
    cap: &str,
    output: Option<&Path>,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<()> {
    let cap: Cap = cap.parse()?;
    let manifest = load_manifest(blobs, &cap.id())?;
    let key = match &cap {
        Cap::Read(c) => Some(&c.key),
        Cap::Public(_) => None,
    };
    let mut decoder = Decoder::new(manifest.clone(), key)?;
    let mut columns: Vec<Option<File>> = manifest
        .columns()
        .iter()
        .map(|h| blobs.open_blob(h))
        .collect::<io::Result<_>>()?;
    let file_len = manifest.layout().length();
    let range = match (offset, length) {
        (None, None) => None,
        (o, l) => {
            let start = o.unwrap_or(0);
            let end = l.map_or(file_len, |l| start.saturating_add(l).min(file_len));
            Some(start..end.max(start))
        }
    };
    let run = |out: &mut dyn Write, decoder: &mut Decoder, columns: &mut [Option<File>]| {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let report = match &range {
            None => decode_file(decoder, columns, &mut out)?,
            Some(r) => decode_range(decoder, columns, r.clone(), &mut out)?,
        };
        out.flush()?;
        anyhow::Ok(report)
    };
    let report = match output {
        None => run(&mut io::stdout().lock(), &mut decoder, &mut columns)?,
        Some(path) => {
            let mut out = crate::output::AtomicFile::create(path)?;
            let report = run(&mut out, &mut decoder, &mut columns)?;
            out.commit()?;
            report
        }
    };
    warn_faults(&report);
    Ok(())
}

fn warn_faults(report: &DecodeReport) {
    for (c, fault) in &report.faults {
        eprintln!("warning: column {c} is {fault}; the file was rebuilt from the others");
    }
}

pub(crate) fn cmd_inspect(g: &Global, blobs: &BlobDir, cap: &str) -> Result<()> {
    let cap: Cap = cap.parse()?;
    let manifest = load_manifest(blobs, &cap.id())?;
    if g.json {
        let layout = manifest.layout();
        let params = layout.params();
        let key = match &cap {
            Cap::Read(c) => Some(&c.key),
            Cap::Public(_) => None,
        };
        let metadata = Decoder::new(manifest.clone(), key).ok().map(|d| {
            let m = d.metadata();
            serde_json::json!({"name": m.name, "media_type": m.media_type})
        });
        let columns = manifest
            .columns()
            .iter()
            .map(|h| {
                Ok(serde_json::json!({"hash": h.to_hex(), "here": blobs.open_blob(h)?.is_some()}))
            })
            .collect::<io::Result<Vec<_>>>()?;
        println!(
            "{}",
            serde_json::json!({
                "id": manifest.id().to_hex(),
                "public_id": PublicId { id: manifest.id() }.to_string(),
                "suite": format!("{:?}", manifest.suite()),
                "length": layout.length(),
                "k": params.data_columns(),
                "m": params.parity_columns(),
                "segment_size": params.segment_size(),
                "segments": layout.segments(),
                "shard_len": layout.shard_len(),
                "column_len": layout.column_len(),
                "columns": columns,
                "metadata": metadata,
            })
        );
        return Ok(());
    }
    let layout = manifest.layout();
    let params = layout.params();
    let mut out = io::stdout().lock();
    writeln!(out, "file id      {}", manifest.id())?;
    writeln!(out, "public id    {}", PublicId { id: manifest.id() })?;
    writeln!(out, "suite        {:?}", manifest.suite())?;
    writeln!(out, "length       {} bytes", layout.length())?;
    writeln!(
        out,
        "coding       k={} m={}, segment {} bytes, {} segments, shard {} bytes",
        params.data_columns(),
        params.parity_columns(),
        params.segment_size(),
        layout.segments(),
        layout.shard_len()
    )?;
    writeln!(out, "column len   {} bytes", layout.column_len())?;
    for (j, h) in manifest.columns().iter().enumerate() {
        let here = blobs.open_blob(h)?.is_some();
        writeln!(
            out,
            "column {j:<3}   {h} {}",
            if here { "" } else { "(not here)" }
        )?;
    }
    let key = match &cap {
        Cap::Read(c) => Some(&c.key),
        Cap::Public(_) => None,
    };
    match Decoder::new(manifest, key) {
        Ok(d) => {
            let m = d.metadata();
            writeln!(out, "name         {}", m.name.as_deref().unwrap_or("-"))?;
            writeln!(
                out,
                "media type   {}",
                m.media_type.as_deref().unwrap_or("-")
            )?;
            if let Some(t) = m.modified {
                let secs = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or_else(|e| -(e.duration().as_secs() as i64));
                writeln!(out, "modified     {secs} (unix seconds)")?;
            }
        }
        Err(e) => writeln!(out, "metadata     not readable: {e}")?,
    }
    Ok(())
}
