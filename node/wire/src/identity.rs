//! Secret key files: a participant's long-lived identity (an ed25519 secret key), and
//! any other 32-byte secret (the convergence secret).
//!
//! The identity key is the iroh `EndpointId` (so peers know who connects from the QUIC
//! handshake itself) and signs the node's DHT records. A file is 32 raw bytes, created
//! with mode 0600; a file that other users can read is refused.

use std::{fs, io, io::Write, path::Path};

use iroh::SecretKey;
use mosaic_codec::ErrorKind;

/// The identity key file could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("cannot use the identity key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not 32 bytes.
    #[error(
        "{path} is not an identity key (32 bytes expected, found {len}): move it away to create a new identity"
    )]
    Malformed {
        /// The key file.
        path: String,
        /// Its length.
        len: usize,
    },
    /// Other users can read the file.
    #[error("{path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`")]
    Exposed {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

impl IdentityError {
    /// A key file others can read is refused; the rest is local I/O or a bad file.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Exposed { .. } => ErrorKind::Refused,
            _ => ErrorKind::Other,
        }
    }
}

/// Loads the identity key at `path`, creating it (and its directory) on first use.
pub fn load_or_create(path: &Path) -> Result<SecretKey, IdentityError> {
    load_or_create_secret(path).map(|bytes| SecretKey::from_bytes(&bytes))
}

/// Loads the 32-byte secret at `path`, creating a random one (and its directory) on
/// first use.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], IdentityError> {
    let shown = path.display().to_string();
    let io_err = |source| IdentityError::Io {
        path: shown.clone(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) => {
            if let Some(mode) = exposed_mode(path).map_err(io_err)? {
                return Err(IdentityError::Exposed {
                    path: shown.clone(),
                    mode,
                });
            }
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::Malformed {
                    path: shown.clone(),
                    len: bytes.len(),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io_err)?;
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| io_err(io::Error::other(e.to_string())))?;
            write_private(path, &bytes).map_err(io_err)?;
            Ok(bytes)
        }
        Err(e) => Err(io_err(e)),
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes`, durably.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `path` (which must not exist) and writes `bytes`, durably.
#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The permission bits of `path` if users other than its owner may read or write it;
/// `None` if it is private (always `None` off Unix).
#[cfg(unix)]
pub fn exposed_mode(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// The permission bits of `path` if users other than its owner may read or write it;
/// `None` if it is private (always `None` off Unix).
#[cfg(not(unix))]
pub fn exposed_mode(_: &Path) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded_and_exposure_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/identity.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create(&path).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::write(dir.path().join("short.key"), [1, 2, 3]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                dir.path().join("short.key"),
                fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        let err = load_or_create(&dir.path().join("short.key")).unwrap_err();
        assert!(
            matches!(err, IdentityError::Malformed { len: 3, .. }),
            "{err}"
        );
    }
}
