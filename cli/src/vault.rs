//! Passphrase-protected files: exported keys and keyrings. The format (container and
//! bundle) is [`format`], pure; this module adds where the passphrase comes from and
//! the exit code of a wrong one.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

pub mod format;

use format::VaultError;

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

/// Seals `plain` under `pass`.
pub fn seal(pass: &str, plain: &[u8]) -> Result<Vec<u8>> {
    Ok(format::seal(pass, plain)?)
}

/// Opens a sealed file with `pass`. A wrong passphrase (or an altered file) exits as
/// refused; a file that is not an export, or asks too much, as any other failure.
pub fn open(pass: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    format::open(pass, sealed).map_err(|e| match e {
        VaultError::WrongPassphrase => anyhow::Error::new(crate::exit::Failure::new(
            crate::exit::Code::Refused,
            e.to_string(),
        )),
        e => anyhow::Error::new(e),
    })
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
        assert_eq!(crate::exit::classify(&wrong), crate::exit::Code::Refused);
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
        assert_eq!(crate::exit::classify(&e), crate::exit::Code::Failure);
        assert!(open("x", b"not a vault").is_err());
    }
}
