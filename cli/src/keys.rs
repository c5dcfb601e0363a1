//! The client's keys: identities (ed25519, the `EndpointId` nodes authorize and pins
//! belong to) and the convergence secret, as files in `$XDG_CONFIG_HOME/mosaic/keys/`.
//!
//! `NAME.key` is an identity, 32 raw bytes; `NAME.name` is a name key (the ed25519
//! secret of a mutable name, see `mosaic name`), 32 raw bytes; `convergence.secret` is
//! the convergence secret, 32 raw bytes. One name is one key, whatever its kind. The directory is 0700 and every file 0600; a key file others
//! can read is refused with the command that fixes it. The identity in use is `--key
//! NAME` (`MOSAIC_KEY`, `key =` in the config file), else `default`, created on first
//! use. The name `convergence` is reserved for the convergence secret.
//!
//! Keys leave the machine only sealed under a passphrase (`key export`, `export`; see
//! [`crate::vault`]).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use iroh::SecretKey;
use mosaic_codec::ConvergenceSecret;
use mosaic_wire::identity;
use zeroize::Zeroizing;

use crate::{
    exit::{Code, fail},
    vault::format::{secret_from_hex, secret_to_hex},
};

/// The identity used when none is named.
pub const DEFAULT: &str = "default";
/// The reserved name of the convergence secret.
pub const CONVERGENCE: &str = "convergence";

// A key's kind and its exported form are part of the export file's format.
pub use crate::vault::format::{Exported, Kind};

/// A key in a listing: name, kind, and its id (empty for the convergence secret) or
/// why it cannot be used.
pub type Listed = (String, Kind, Result<String, identity::IdentityError>);

/// The key directory.
#[derive(Debug, Clone)]
pub struct Keys {
    dir: PathBuf,
}

/// Key names: what a file name can safely be.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if !ok {
        return fail(
            Code::BadInput,
            format!(
                "{name:?} is not a key name: use up to 64 letters, digits, '-', '_' or '.', not starting with '.'"
            ),
        );
    }
    Ok(())
}

fn unhex(s: &str) -> Result<Zeroizing<[u8; 32]>> {
    match secret_from_hex(s) {
        Some(secret) => Ok(secret),
        None => fail(Code::BadInput, "a key in the file is not 32 hex bytes"),
    }
}

impl Keys {
    /// The key directory under `config_home`, created 0700. A `client.key` and
    /// `convergence.secret` from before key names existed move in as `default` and
    /// the convergence secret.
    pub fn open(config_home: &Path) -> Result<Self> {
        let dir = config_home.join("keys");
        if !dir.exists() {
            fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the key directory {}", dir.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            }
        }
        // Checked every time, so an interrupted move finishes and no new identity
        // silently replaces the old one.
        for (old, new) in [
            ("client.key", "default.key"),
            ("convergence.secret", "convergence.secret"),
        ] {
            let (old, new) = (config_home.join(old), dir.join(new));
            if old.exists() && !new.exists() {
                fs::rename(&old, &new).with_context(|| {
                    format!("cannot move {} to {}", old.display(), new.display())
                })?;
            }
        }
        Ok(Self { dir })
    }

    fn name_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.name"))
    }

    /// Refuses `name` if a key of any kind has it.
    fn check_free(&self, name: &str) -> Result<()> {
        for path in [self.path(name), self.name_path(name)] {
            if path.exists() {
                return fail(
                    Code::Refused,
                    format!(
                        "a key named {name:?} exists already ({}): choose another name, or remove it first with `mosaic key rm {name}` if you really mean to replace it",
                        path.display()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Creates name key `name` (a fresh ed25519 secret); refuses a taken name.
    pub fn create_name(&self, name: &str) -> Result<[u8; 32]> {
        check_name(name)?;
        if name == CONVERGENCE {
            return fail(
                Code::BadInput,
                "`convergence` is reserved for the convergence secret",
            );
        }
        self.check_free(name)?;
        Ok(identity::load_or_create_secret(&self.name_path(name))?)
    }

    /// The secret of name key `name`, which must exist.
    pub fn name_secret(&self, name: &str) -> Result<Zeroizing<[u8; 32]>> {
        check_name(name)?;
        let path = self.name_path(name);
        if !path.exists() {
            return fail(
                Code::NotFound,
                format!(
                    "there is no name key {name:?}: `mosaic name ls` lists yours, `mosaic name new {name}` makes one"
                ),
            );
        }
        Ok(Zeroizing::new(identity::load_or_create_secret(&path)?))
    }

    fn path(&self, name: &str) -> PathBuf {
        if name == CONVERGENCE {
            self.dir.join("convergence.secret")
        } else {
            self.dir.join(format!("{name}.key"))
        }
    }

    /// Whether key `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists() || self.name_path(name).exists()
    }

    /// Loads identity `name`; the default one is created on first use, any other
    /// must exist.
    pub fn identity(&self, name: &str) -> Result<SecretKey> {
        check_name(name)?;
        if name == CONVERGENCE {
            return fail(
                Code::BadInput,
                "`convergence` is the convergence secret, not an identity",
            );
        }
        let path = self.path(name);
        if name != DEFAULT && !path.exists() {
            return fail(
                Code::NotFound,
                format!(
                    "there is no key named {name:?}: `mosaic key list` shows your keys, `mosaic key new {name}` makes one"
                ),
            );
        }
        Ok(identity::load_or_create(&path)?)
    }

    /// The convergence secret, created on first use.
    pub fn convergence(&self) -> Result<ConvergenceSecret> {
        let path = self.path(CONVERGENCE);
        let existed = path.exists();
        let secret = ConvergenceSecret::from_bytes(identity::load_or_create_secret(&path)?);
        if !existed {
            eprintln!("created a convergence secret in {}", path.display());
        }
        Ok(secret)
    }

    /// Creates key `name` (an identity, or the convergence secret); refuses to
    /// overwrite.
    pub fn create(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        self.check_free(name)?;
        let path = self.path(name);
        identity::load_or_create_secret(&path)?;
        Ok(path)
    }

    /// Every key: (name, kind, identity id or why it is unusable). Sorted by name.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read the key directory {}", self.dir.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".key") {
                let id = identity::load_or_create(&self.path(stem)).map(|k| k.public().to_string());
                out.push((stem.to_owned(), Kind::Identity, id));
            } else if let Some(stem) = name.strip_suffix(".name") {
                let key = identity::load_or_create_secret(&self.name_path(stem)).map(|s| {
                    let signer = mosaic_wire::record::SigningKey::from_bytes(&s);
                    mosaic_codec::name::NameKey(signer.verifying_key().to_bytes()).to_string()
                });
                out.push((stem.to_owned(), Kind::Name, key));
            } else if name == "convergence.secret" {
                let ok =
                    identity::load_or_create_secret(&self.path(CONVERGENCE)).map(|_| String::new());
                out.push((CONVERGENCE.to_owned(), Kind::Convergence, ok));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The file of key `name`, which must exist.
    fn existing(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        let mut path = self.path(name);
        if !path.exists() && name != CONVERGENCE {
            path = self.name_path(name);
        }
        if !path.exists() {
            return fail(
                Code::NotFound,
                format!("there is no key named {name:?}: `mosaic key list` shows your keys"),
            );
        }
        Ok(path)
    }

    /// Reads key `name` for export.
    pub fn export(&self, name: &str) -> Result<Exported> {
        let path = self.existing(name)?;
        let bytes = Zeroizing::new(identity::load_or_create_secret(&path)?);
        Ok(Exported {
            name: name.to_owned(),
            kind: if name == CONVERGENCE {
                Kind::Convergence
            } else if path.extension().is_some_and(|e| e == "name") {
                Kind::Name
            } else {
                Kind::Identity
            },
            secret: secret_to_hex(&bytes).to_string(),
        })
    }

    /// Writes an imported key as `name` (its own unless renamed). An identical key
    /// already there is fine; a different one under the same name is refused.
    /// Returns whether a file was written.
    pub fn import(&self, key: &Exported, name: Option<&str>) -> Result<bool> {
        let name = match key.kind {
            Kind::Convergence => CONVERGENCE,
            Kind::Identity | Kind::Name => name.unwrap_or(&key.name),
        };
        check_name(name)?;
        if key.kind != Kind::Convergence && name == CONVERGENCE {
            return fail(
                Code::BadInput,
                "`convergence` is reserved for the convergence secret: import the identity with --name",
            );
        }
        let secret = unhex(&key.secret)?;
        let (path, other) = match key.kind {
            Kind::Name => (self.name_path(name), self.path(name)),
            _ => (self.path(name), self.name_path(name)),
        };
        if other.exists() {
            return fail(
                Code::Refused,
                format!(
                    "a key of another kind named {name:?} exists already: import this one under another name with --name"
                ),
            );
        }
        if path.exists() {
            let have = Zeroizing::new(identity::load_or_create_secret(&path)?);
            if *have == *secret {
                return Ok(false);
            }
            return fail(
                Code::Refused,
                format!(
                    "a different key named {name:?} exists already: import this one under another name with --name"
                ),
            );
        }
        write_private(&path, secret.as_ref())?;
        Ok(true)
    }

    /// Deletes key `name`.
    pub fn remove(&self, name: &str) -> Result<PathBuf> {
        let path = self.existing(name)?;
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(path)
    }
}

/// Creates `path` with mode 0600 and writes `bytes`, durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    identity::write_private(path, bytes)
        .with_context(|| format!("cannot create {}", path.display()))
}
