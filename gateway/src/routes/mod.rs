//! The gateway's routes, one module each (the table is `router` in `lib.rs`):
//! `file` serves `/f/{readcap}` (private files), `site` serves `/p/{id}[/path]`
//! (public files and directories), `blob` serves `/blob/{hash}` (raw or trustless),
//! `share` serves the share page `/s/` that reads private files in the browser.

pub(crate) mod api;
pub(crate) mod blob;
pub(crate) mod file;
pub(crate) mod name;
pub(crate) mod share;
pub(crate) mod site;
pub(crate) mod ui;
pub(crate) mod upload;
