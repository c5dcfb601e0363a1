//! A local, content-addressed blob directory: the offline counterpart of a storage node.
//!
//! `ROOT/blobs/<hex hash>` holds one blob (a column or a manifest), named by its BLAKE3
//! hash. Writes go to `ROOT/tmp/` first, are fsynced, then renamed into place and the
//! directory fsynced: a crash leaves either the whole blob or none, never a torn one
//! under a valid name.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use mosaic_codec::Hash;

/// A blob directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("blobs"))?;
        fs::create_dir_all(root.join("tmp"))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Where blob `hash` lives.
    pub fn blob_path(&self, hash: &Hash) -> PathBuf {
        self.root.join("blobs").join(hash.to_hex())
    }

    /// A new temporary file to write a blob into before [`BlobDir::commit`].
    pub fn temp_file(&self, tag: &str) -> io::Result<(PathBuf, File)> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let name = format!(
            "{}-{tag}",
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let path = self.root.join("tmp").join(name);
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((path, file))
    }

    /// Durably moves a finished temporary file into place as blob `hash`.
    pub fn commit(&self, tmp: &Path, file: File, hash: &Hash) -> io::Result<()> {
        file.sync_all()?;
        drop(file);
        fs::rename(tmp, self.blob_path(hash))?;
        File::open(self.root.join("blobs"))?.sync_all()
    }

    /// Reads a whole (small) blob, e.g. a manifest. `None` if absent.
    pub fn read_small(&self, hash: &Hash, max: usize) -> io::Result<Option<Vec<u8>>> {
        match File::open(self.blob_path(hash)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                if len > max as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} is {len} bytes, more than the {max} expected",
                            hash.fmt_short()
                        ),
                    ));
                }
                Ok(Some(fs::read(self.blob_path(hash))?))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens blob `hash` for reading. `None` if absent.
    pub fn open_blob(&self, hash: &Hash) -> io::Result<Option<File>> {
        match File::open(self.blob_path(hash)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
