//! The collector: keeps a node's usage under its high watermark by dropping blobs no
//! one pins, oldest first, down to the low watermark (see `store.rs` for the rules that
//! make this safe against concurrent pins).

use std::time::Duration;

use tracing::warn;

use crate::store::Store;

/// Checks usage against the high watermark every `interval` and collects unpinned
/// blobs down to the low one (off the async workers: it is redb work).
pub(crate) async fn run(store: Store, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.collect_if_needed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!("garbage collection failed: {e}"),
            Err(e) => warn!("garbage collection task failed: {e}"),
        }
    }
}
