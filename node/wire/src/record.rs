//! A name's signed record: a BEP 44 mutable item (salt [`NAME_SALT`]) as it travels
//! between Mosaic participants (storage protocol, node databases) and to the DHT.
//!
//! Invariant: a [`SignedRecord`] that came from anywhere but our own signing key is
//! used only after [`SignedRecord::verify`]: the signature covers the sequence number
//! and the value exactly as BEP 44 defines (`4:salt…3:seqi…e1:v…`), so a DHT node and a
//! Mosaic node accept the same records.

use mosaic_codec::{
    ErrorKind,
    name::{MAX_VALUE, NAME_SALT, NameKey},
};
// The key type n0-mainline signs with (its own re-export of it): a record signs and
// verifies without the DHT.
pub use ed25519_dalek::SigningKey;
#[cfg(feature = "net")]
use n0_mainline::MutableItem;
use serde::{Deserialize, Serialize};

/// A name's signed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The name's ed25519 public key.
    pub key: [u8; 32],
    /// Its sequence number: a newer record has a higher one.
    pub seq: i64,
    /// The value (a `mosaic_codec::name::Pointer`), at most [`MAX_VALUE`] bytes.
    pub value: Vec<u8>,
    /// Ed25519 signature over the BEP 44 encoding of salt, seq and value.
    #[serde(with = "sig_bytes")]
    pub sig: [u8; 64],
}

/// A record that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The signature does not match the key, sequence number and value.
    #[error("the name record's signature is not valid for name {0}: it was forged or altered")]
    Forged(NameKey),
    /// The value exceeds BEP 44's limit.
    #[error("the name record holds {len} bytes; a DHT record holds at most {MAX_VALUE} (BEP 44)")]
    TooLarge {
        /// Its size.
        len: usize,
    },
}

impl RecordError {
    /// Bad input from whoever sent it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RecordError::Forged(_) => ErrorKind::Refused,
            RecordError::TooLarge { .. } => ErrorKind::BadInput,
        }
    }
}

/// BEP 44's signed bytes: `4:salt{len}:{salt}3:seqi{seq}e1:v{len}:{value}`.
fn signable(seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = format!("4:salt{}:", NAME_SALT.len()).into_bytes();
    out.extend_from_slice(NAME_SALT);
    out.extend_from_slice(format!("3:seqi{seq}e1:v{}:", value.len()).as_bytes());
    out.extend_from_slice(value);
    out
}

impl SignedRecord {
    /// Signs `value` with sequence number `seq` under `signer`.
    pub fn sign(signer: &SigningKey, seq: i64, value: Vec<u8>) -> Result<Self, RecordError> {
        if value.len() > MAX_VALUE {
            return Err(RecordError::TooLarge { len: value.len() });
        }
        use ed25519_dalek::Signer;
        let sig = signer.sign(&signable(seq, &value)).to_bytes();
        Ok(Self {
            key: signer.verifying_key().to_bytes(),
            seq,
            value,
            sig,
        })
    }

    /// The name it belongs to.
    pub fn name(&self) -> NameKey {
        NameKey(self.key)
    }

    /// Checks the size and the signature.
    pub fn verify(&self) -> Result<(), RecordError> {
        if self.value.len() > MAX_VALUE {
            return Err(RecordError::TooLarge {
                len: self.value.len(),
            });
        }
        let forged = || RecordError::Forged(self.name());
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.key).map_err(|_| forged())?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        key.verify_strict(&signable(self.seq, &self.value), &sig)
            .map_err(|_| forged())
    }

    /// As a DHT mutable item (the signature is carried as is).
    #[cfg(feature = "net")]
    pub fn to_item(&self) -> MutableItem {
        MutableItem::new_signed_unchecked(
            self.key,
            self.sig,
            &self.value,
            self.seq,
            Some(NAME_SALT),
        )
    }

    /// From a DHT mutable item (which the DHT node verified on receipt).
    #[cfg(feature = "net")]
    pub fn from_item(item: &MutableItem) -> Self {
        Self {
            key: *item.key(),
            seq: item.seq(),
            value: item.value().to_vec(),
            sig: *item.signature(),
        }
    }
}

/// serde for `[u8; 64]` (serde derives arrays up to 32).
mod sig_bytes {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| D::Error::custom("a signature is 64 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_records_verify_and_forgeries_do_not() {
        let signer = SigningKey::from_bytes(&[7; 32]);
        let r = SignedRecord::sign(&signer, 5, b"value".to_vec()).unwrap();
        r.verify().unwrap();
        let mut higher = r.clone();
        higher.seq = 6;
        assert_eq!(higher.verify(), Err(RecordError::Forged(r.name())));
        let mut other = r.clone();
        other.value = b"other".to_vec();
        assert!(other.verify().is_err());
        let bytes = postcard::to_stdvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<SignedRecord>(&bytes).unwrap(), r);
        assert_eq!(
            SignedRecord::sign(&signer, 1, vec![0; MAX_VALUE + 1]),
            Err(RecordError::TooLarge { len: MAX_VALUE + 1 })
        );
    }

    #[cfg(feature = "net")]
    #[test]
    fn records_are_the_dhts_mutable_items() {
        let signer = SigningKey::from_bytes(&[7; 32]);
        let r = SignedRecord::sign(&signer, 5, b"value".to_vec()).unwrap();
        let item = r.to_item();
        assert_eq!(SignedRecord::from_item(&item), r);
        // The same bytes n0-mainline signs: an item it makes verifies here.
        let theirs = MutableItem::new(&signer, b"value", 5, Some(NAME_SALT));
        assert_eq!(theirs.signature(), &r.sig);
    }
}
