//! The gateway's routes, one module each (the table is `router` in `lib.rs`):
//! `file` serves `/f/{readcap}` (private files), `site` serves `/p/{id}[/path]`
//! (public files and directories), `blob` serves `/blob/{hash}`.

pub(crate) mod blob;
pub(crate) mod file;
pub(crate) mod site;
