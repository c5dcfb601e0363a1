//! Exit codes: one per kind of failure a script may want to tell apart (see
//! docs/cli.md). A command raises a [`Failure`] to choose its code; errors from the
//! libraries are classified by their [`ErrorKind`] (never by their message); anything
//! else is 1.

use mosaic_client::{BlobError, ClientError, PeerError};
use mosaic_codec::{
    CapError, DecodeError, EncodeError, ErrorKind, HashParseError, ManifestError, MetadataError,
    ParamsError, name::NameError as NameRefError,
};
use mosaic_server::{NodeError, relay::RelayError, store::StoreError};
use mosaic_wire::{
    dht::RoutingError, endpoint::EndpointError, hosts::HostError, identity::IdentityError,
    record::RecordError, relay::RelayParseError,
};

/// Why `mosaic` exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    // 0 is success.
    /// Any other failure.
    Failure = 1,
    /// Bad usage: unknown flag, missing argument (clap).
    Usage = 2,
    /// Something named does not exist: a file on the network, a keyring entry, a key.
    NotFound = 3,
    /// Refused: wrong key or passphrase, an identity a node does not accept, a key file
    /// others can read.
    Refused = 4,
    /// The network: cannot join it, too few nodes, too few columns reachable.
    Network = 5,
    /// Space: a node is full or your quota there is used up.
    Space = 6,
    /// Malformed input: a bad cap, id or file.
    BadInput = 7,
}

/// An error that chooses its exit code.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    message: String,
    reported: bool,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reported: false,
        }
    }

    /// A failure the command has already described in its output (with `--json`,
    /// nothing more is printed: stdout stays one JSON value).
    pub fn reported(code: Code, message: impl Into<String>) -> Self {
        Self {
            reported: true,
            ..Self::new(code, message)
        }
    }
}

/// Whether the command already reported this error in its output.
pub fn was_reported(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Failure>().is_some_and(|f| f.reported)
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// `Err` of a [`Failure`].
pub fn fail<T>(code: Code, message: impl Into<String>) -> anyhow::Result<T> {
    Err(Failure::new(code, message).into())
}

impl From<ErrorKind> for Code {
    /// The one table from kinds of failure to exit codes.
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Refused => Code::Refused,
            ErrorKind::Network => Code::Network,
            ErrorKind::Space => Code::Space,
            ErrorKind::BadInput => Code::BadInput,
            ErrorKind::Other => Code::Failure,
            _ => Code::Failure,
        }
    }
}

/// The kind of `e` if it is one of the library error types (each answers for itself).
fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    macro_rules! kinds {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = e.downcast_ref::<$t>() {
                return Some(e.kind());
            })*
        };
    }
    kinds!(
        ClientError,
        BlobError,
        PeerError,
        CapError,
        HashParseError,
        ParamsError,
        DecodeError,
        EncodeError,
        ManifestError,
        MetadataError,
        IdentityError,
        RoutingError,
        NodeError,
        StoreError,
        EndpointError,
        HostError,
        NameRefError,
        RecordError,
        RelayParseError,
        RelayError,
    );
    None
}

/// The exit code for an error: the first cause in the chain that says, by its kind
/// (never by its message).
pub fn classify(e: &anyhow::Error) -> Code {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(kind) = kind_of(cause) {
            return kind.into();
        }
    }
    Code::Failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_wire::{proto::Refusal, request::RequestError};

    /// A node's refusal chooses the exit code by its typed reason, whatever its words.
    #[test]
    fn refusals_choose_codes_by_reason_not_words() {
        let node = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let cases = [
            (Refusal::NoSpace, Code::Space),
            (Refusal::QuotaExceeded, Code::Space),
            (Refusal::Unauthorized, Code::Refused),
            (Refusal::BadRequest, Code::BadInput),
            (Refusal::Internal, Code::Failure),
        ];
        for (reason, code) in cases {
            let e = ClientError::Upload {
                node,
                what: mosaic_client::Role::Column(0),
                source: RequestError::Refused {
                    reason,
                    message: "words that match no rule".into(),
                },
            };
            let e = anyhow::Error::from(e).context("uploading x");
            assert_eq!(classify(&e), code, "{reason:?}");
        }
    }

    #[test]
    fn kinds_found_anywhere_in_the_chain() {
        let id = mosaic_codec::Hash::of(b"x");
        let e = anyhow::Error::from(ClientError::ManifestUnavailable { id, holders: 0 });
        assert_eq!(classify(&e.context("getting x")), Code::NotFound);
        let e = anyhow::Error::from(ClientError::ManifestUnavailable { id, holders: 2 });
        assert_eq!(classify(&e), Code::Network);
        let e = anyhow::Error::from(ClientError::Decode(DecodeError::WrongKey));
        assert_eq!(classify(&e), Code::Refused);
        let e = anyhow::Error::from(DecodeError::KeyRequired);
        assert_eq!(classify(&e), Code::BadInput);
        let e = anyhow::Error::from(Failure::new(Code::Usage, "x"));
        assert_eq!(classify(&e), Code::Usage);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Code::Failure);
    }
}
