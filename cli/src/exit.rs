//! Exit codes: one per kind of failure a script may want to tell apart (see
//! docs/cli.md). A command raises a [`Failure`] to choose its code; errors from the
//! node library are classified by their type; anything else is 1.

use mosaic_node::{
    client::ClientError, codec::CapError, codec::DecodeError, identity::IdentityError,
    reader::BlobError,
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

/// The exit code for an error: the first cause in the chain that says.
pub fn classify(e: &anyhow::Error) -> Code {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if cause.downcast_ref::<CapError>().is_some() {
            return Code::BadInput;
        }
        if let Some(d) = cause.downcast_ref::<DecodeError>() {
            return match d {
                DecodeError::WrongKey | DecodeError::KeyRequired => Code::Refused,
                _ => Code::Failure,
            };
        }
        if let Some(i) = cause.downcast_ref::<IdentityError>() {
            return match i {
                IdentityError::Exposed { .. } => Code::Refused,
                _ => Code::Failure,
            };
        }
        if let Some(b) = cause.downcast_ref::<BlobError>() {
            return match b {
                BlobError::NotFound => Code::NotFound,
                _ => Code::Network,
            };
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return match c {
                ClientError::NoNetwork { .. }
                | ClientError::NotEnoughNodes { .. }
                | ClientError::ColumnsUnavailable { .. } => Code::Network,
                ClientError::ManifestUnavailable { holders: 0, .. } => Code::NotFound,
                ClientError::ManifestUnavailable { .. } => Code::Network,
                ClientError::Decode(DecodeError::WrongKey) => Code::Refused,
                ClientError::Store { reason, .. } => store_reason(reason),
                _ => Code::Failure,
            };
        }
    }
    Code::Failure
}

/// A node's refusal, by its message (the wire carries the reason too, but the client
/// error keeps the text).
fn store_reason(reason: &str) -> Code {
    if reason.starts_with("quota exceeded") || reason.starts_with("this node is full") {
        Code::Space
    } else if reason.contains("does not accept data from") {
        Code::Refused
    } else {
        Code::Failure
    }
}
