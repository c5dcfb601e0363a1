//! What kind of failure an error is: the one question every caller asks of an error
//! from any layer. The CLI chooses its exit code by it and the gateway its HTTP status;
//! neither ever reads an error's message to decide.
//!
//! It lives in the lowest crate so that every layer's error types can answer it.

/// The kind of a failure, from the point of view of whoever asked for the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What was named does not exist: a file no node announces, a keyring entry, a key.
    NotFound,
    /// Refused: a wrong key or passphrase, an identity a node does not accept, a secret
    /// file others can read.
    Refused,
    /// The network: cannot join it, too few nodes or columns reachable, a peer that
    /// failed or misbehaved. Trying again later (or elsewhere) may work.
    Network,
    /// Space: a node is full, or the caller's quota there is used up.
    Space,
    /// Malformed input from the caller: a bad cap, id, parameter or file name.
    BadInput,
    /// Anything else: local I/O, data that fails its checks, a bug.
    Other,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Refused => "refused",
            ErrorKind::Network => "network",
            ErrorKind::Space => "space",
            ErrorKind::BadInput => "bad input",
            ErrorKind::Other => "other",
        })
    }
}

use crate::{
    CapError, DecodeError, EncodeError, HashParseError, ManifestError, MetadataError, ParamsError,
    SegmentError,
};

impl CapError {
    /// A cap that does not parse is the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

impl HashParseError {
    /// A hash that does not parse is the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

impl ParamsError {
    /// Coding parameters come from the caller.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

impl MetadataError {
    /// Names and media types come from the caller (when encoding) or from the sealed
    /// metadata (when decoding, where [`DecodeError`] says `Other`).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
}

impl ManifestError {
    /// A manifest that fails its checks is bad data, whoever sent it.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl SegmentError {
    /// Shards that do not open are bad data.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl EncodeError {
    /// Too large a file or unusable metadata is the caller's; the rest is local I/O.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EncodeError::TooLarge { .. } | EncodeError::Metadata(_) => ErrorKind::BadInput,
            _ => ErrorKind::Other,
        }
    }
}

impl DecodeError {
    /// A wrong key is refused; a public id given for a private file (no key at all) and
    /// a range outside the file are the caller's input; the rest is bad data or I/O.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::WrongKey => ErrorKind::Refused,
            DecodeError::KeyRequired | DecodeError::RangeOutOfBounds { .. } => ErrorKind::BadInput,
            _ => ErrorKind::Other,
        }
    }
}
