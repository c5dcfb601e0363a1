//! What Mosaic's fuzz targets (`fuzz_targets/`) share: the parsers that live in crates
//! too heavy to build here, compiled from their own source files.
//!
//! The gateway, the client and the CLI depend on iroh, redb and an HTTP server; built
//! with sanitizer coverage they would take most of CI's fuzz budget. The parsers they
//! own are modules that use external crates only (each says so in its `//!` note), so
//! this crate compiles those very files: the targets exercise the code the binaries
//! run, and a fix there is a fix here. A `crate::` path added to one of them breaks this
//! build, and tests/fuzz.sh says so.
//!
//! The codec and the wire protocol are ordinary dependencies.

/// `gateway/src/http.rs`: the `Range` planner, validators, media type sniffing.
#[path = "../../gateway/src/http.rs"]
pub mod gateway_http;

/// `gateway/src/deny.rs`: the operator's denylist.
#[path = "../../gateway/src/deny.rs"]
pub mod gateway_deny;

/// `node/client/src/dir.rs`: directory indexes.
#[path = "../../node/client/src/dir.rs"]
pub mod client_dir;

/// `cli/src/vault/format.rs`: the export file (sealed container, bundle of keys and
/// keyring entries).
#[path = "../../cli/src/vault/format.rs"]
pub mod cli_export;

#[cfg(test)]
mod seeds;
