//! Passphrase-protected files: exported keys and keyrings.
//!
//! Format (all integers little-endian):
//! ```text
//! magic      8 bytes  "MOSVLT01"
//! m_cost     u32      argon2id memory, KiB
//! t_cost     u32      argon2id passes
//! p_cost     u32      argon2id lanes
//! salt       16 bytes random
//! nonce      24 bytes random
//! sealed     XChaCha20-Poly1305(key, nonce, aad = all of the above, plaintext) ‖ tag
//! ```
//! The key is argon2id(passphrase, salt, m_cost, t_cost, p_cost), 32 bytes. The cost
//! parameters travel in the header (authenticated as associated data), so they can be
//! raised later without breaking old files; a file asking for more than
//! [`MAX_M_COST_KIB`] / [`MAX_T_COST`] is refused before any work, so a crafted file
//! cannot make `import` exhaust memory. A wrong passphrase and an altered file both
//! fail the tag check, and nothing is imported.

use std::io::IsTerminal;

use anyhow::{Context, Result, anyhow, bail};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"MOSVLT01";
const HEADER_LEN: usize = 8 + 12 + 16 + 24;
const TAG_LEN: usize = 16;

/// Argon2id memory cost of new files: 64 MiB (OWASP's first recommendation is 46 MiB).
pub const M_COST_KIB: u32 = 64 * 1024;
/// Argon2id passes of new files.
pub const T_COST: u32 = 3;
/// Most memory a file may ask for: 1 GiB.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// Most passes a file may ask for.
pub const MAX_T_COST: u32 = 64;

/// Where the passphrase comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from the first line of this file instead of asking (or
    /// from the MOSAIC_PASSPHRASE variable).
    #[arg(long)]
    pub passphrase_file: Option<std::path::PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase: `--passphrase-file`, else `MOSAIC_PASSPHRASE`, else asked on the
    /// terminal (twice when `confirm`, for a new file).
    pub fn get(&self, confirm: bool) -> Result<Zeroizing<String>> {
        let pass = if let Some(path) = &self.passphrase_file {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the passphrase file {}", path.display())
                })?);
            Zeroizing::new(text.lines().next().unwrap_or("").to_owned())
        } else if let Ok(p) = std::env::var("MOSAIC_PASSPHRASE") {
            Zeroizing::new(p)
        } else if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
            let first = Zeroizing::new(
                rpassword::prompt_password("passphrase: ").context("cannot read a passphrase")?,
            );
            if confirm {
                let again = Zeroizing::new(
                    rpassword::prompt_password("passphrase again: ")
                        .context("cannot read a passphrase")?,
                );
                if *again != *first {
                    bail!("the two passphrases differ; nothing was written");
                }
            }
            first
        } else {
            bail!(
                "a passphrase is needed: set MOSAIC_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal"
            );
        };
        if pass.is_empty() {
            bail!("the passphrase is empty: choose one (it protects your keys)");
        }
        Ok(pass)
    }
}

fn derive(pass: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| anyhow!("key derivation: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.as_bytes(), salt, key.as_mut())
        .map_err(|e| anyhow!("key derivation: {e}"))?;
    Ok(key)
}

/// Seals `plain` under `pass`.
pub fn seal(pass: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
    getrandom::fill(&mut nonce).map_err(|e| anyhow!("no randomness: {e}"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    for v in [M_COST_KIB, T_COST, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = derive(pass, &salt, M_COST_KIB, T_COST, 1)?;
    out.extend_from_slice(plain);
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let tag = XChaCha20Poly1305::new(&(*key).into())
        .encrypt_inout_detached(&nonce.into(), header, body.into())
        .map_err(|_| anyhow!("the file is too large to seal"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a sealed file with `pass`.
pub fn open(pass: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < HEADER_LEN + TAG_LEN || &sealed[..8] != MAGIC {
        bail!("this is not a Mosaic export (made by `mosaic export` or `mosaic key export`)");
    }
    let word =
        |i: usize| u32::from_le_bytes(sealed[8 + 4 * i..12 + 4 * i].try_into().expect("4 bytes"));
    let (m, t, p) = (word(0), word(1), word(2));
    if m > MAX_M_COST_KIB || t > MAX_T_COST || p == 0 || p > 16 {
        bail!(
            "this export asks for key derivation costs beyond the limits (memory {m} KiB, {t} passes, {p} lanes): refusing to open it"
        );
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let salt = &header[20..36];
    let nonce: [u8; 24] = header[36..60].try_into().expect("24 bytes");
    let tag: [u8; TAG_LEN] = tag.try_into().expect("16 bytes");
    let key = derive(pass, salt, m, t, p)?;
    let mut plain = Zeroizing::new(body.to_vec());
    XChaCha20Poly1305::new(&(*key).into())
        .decrypt_inout_detached(
            &nonce.into(),
            header,
            plain.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| {
            anyhow::Error::new(crate::exit::Failure::new(
                crate::exit::Code::Refused,
                "wrong passphrase, or the file was altered: nothing was imported",
            ))
        })?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_failure() {
        let sealed = seal("correct horse", b"secret things").unwrap();
        assert_eq!(
            &open("correct horse", &sealed).unwrap()[..],
            b"secret things"
        );
        let wrong = open("wrong horse", &sealed).unwrap_err();
        assert!(wrong.to_string().contains("wrong passphrase"), "{wrong}");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(open("correct horse", &altered).is_err());
        // Costs are authenticated: lowering them breaks the tag.
        let mut cheaper = sealed.clone();
        cheaper[12] = 1;
        assert!(open("correct horse", &cheaper).is_err());
        let mut greedy = sealed.clone();
        greedy[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = open("correct horse", &greedy).unwrap_err();
        assert!(e.to_string().contains("beyond the limits"), "{e}");
        assert!(open("x", b"not a vault").is_err());
    }
}
