//! What commands write: output files written whole or not at all, and the one-line
//! summaries more than one command prints ([`health_line`]).
//!
//! An [`AtomicFile`] writes to `.NAME.mosaic-partial` beside the target, and only
//! [`AtomicFile::commit`] (flush, fsync, rename) makes it appear under its name. Dropped
//! uncommitted (an error, a panic, a failed download), the temporary file is removed:
//! a failed `get -o OUT` or `decode -o OUT` never leaves a partial OUT.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

/// A file that appears at its path only when committed.
#[derive(Debug)]
pub(crate) struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `path`.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = dir.join(format!(".{name}.mosaic-partial"));
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self {
            tmp,
            path: path.to_owned(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub(crate) fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("committed once");
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A node's health counters on one line (`status`, `node health`).
pub(crate) fn health_line(h: &mosaic_wire::proto::HealthStats) -> String {
    format!(
        "files {} (checked {} times, {} columns missing, repair backlog {})  repairs {} done, {} failed, {} rebuilt  scrubbed {} ({} passes, {} corrupt)",
        h.files,
        h.files_checked,
        h.columns_missing,
        h.repair_backlog,
        h.repairs_done,
        h.repairs_failed,
        bytesize::ByteSize(h.bytes_rebuilt),
        bytesize::ByteSize(h.bytes_scrubbed),
        h.scrub_passes,
        h.corrupt_found,
    )
}
