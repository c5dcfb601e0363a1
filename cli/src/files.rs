//! What a local file becomes when it is encoded or uploaded: its sealed metadata (name,
//! modification time, media type) and its access (public, or a random or convergent
//! key). Shared by `encode` and `put`.

use std::{
    fs::{self, File},
    io,
    path::Path,
};

use anyhow::{Context, Result};
use mosaic_codec::{Access, ConvergenceSecret, FileKey, Metadata, Params};

/// The metadata recorded for `path`: its name, modification time, and media type
/// (given, or guessed from the name).
pub fn metadata_for(path: &Path, meta: &fs::Metadata, media_type: Option<String>) -> Metadata {
    let name = path.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    let media_type = media_type.or_else(|| {
        name.as_deref()
            .and_then(|n| mime_guess::from_path(n).first_raw())
            .map(str::to_owned)
    });
    Metadata {
        name,
        media_type,
        modified: meta.modified().ok(),
    }
}

/// Who may read the file: everyone, or holders of a random or convergent key.
pub fn access_for(
    path: &Path,
    length: u64,
    params: Params,
    public: bool,
    convergent: bool,
) -> Result<Access> {
    Ok(if public {
        Access::Public
    } else if convergent {
        let secret = convergence_secret()?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Access::Private(
            FileKey::convergent(&secret, params, length, io::BufReader::new(file))
                .with_context(|| format!("cannot read {}", path.display()))?,
        )
    } else {
        Access::Private(FileKey::random())
    })
}

/// The user's convergence secret, created on first use (mode 0600).
fn convergence_secret() -> Result<ConvergenceSecret> {
    crate::settings::keys()?.convergence()
}
