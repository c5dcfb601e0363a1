//! Mosaic's codec for the browser: the WebAssembly module the gateway serves to its
//! share page, where a service worker uses it to read private files without the
//! gateway ever seeing their key.
//!
//! - [`verify`]: checks the gateway's trustless answers (`/blob/{hash}?format=bao`)
//!   against BLAKE3 hashes, chunk group by chunk group.
//! - [`file`](mod@file): a file opened from its cap and verified manifest; shards in, verified
//!   and opened segments out (Reed–Solomon rebuild when a column is missing or bad).
//! - [`upload`]: a private upload coded in the page (sealed under a fresh key,
//!   erasure-coded), so the gateway relays ciphertext and never learns the key.
//! - `ffi` (wasm32 only): plain `extern "C"` exports over one input and one output
//!   buffer; no JavaScript glue, one import (`env.mosaic_random`, the page's
//!   `crypto.getRandomValues`). The page's side is `gateway/assets/sw.js`.
//!
//! Invariant: no byte from the gateway reaches the page's output before it verified
//! against a hash the cap binds (manifest → column hashes → chunk groups) and its
//! segment's tag. Native builds of this crate exist for its tests and benchmarks.

pub mod file;
pub mod upload;
pub mod verify;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod ffi;
