//! [`Hash`]: a BLAKE3 hash naming a column or a manifest (the file id).

use std::fmt;

/// A 32-byte BLAKE3 hash. Columns are named by the hash of their bytes (the same hash
/// iroh-blobs uses), and a file by the hash of its manifest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
    /// A hash from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    /// The hash's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, HashParseError> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(HashParseError);
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16).ok_or(HashParseError);
            out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Ok(Self(out))
    }
    /// The first 5 bytes in hex, for logs.
    pub fn fmt_short(&self) -> String {
        self.to_hex()[..10].to_string()
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a BLAKE3 hash: expected 64 hexadecimal digits")]
pub struct HashParseError;

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.fmt_short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let h = Hash::of(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert!(Hash::from_hex("abc").is_err());
        assert!(Hash::from_hex(&"g".repeat(64)).is_err());
        assert!(Hash::from_hex(&"é".repeat(32)).is_err());
    }
}
