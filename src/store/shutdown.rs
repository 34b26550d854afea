//! The clean-shutdown marker: `DATA/clean-shutdown` is written (and fsynced) by a graceful
//! stop once the message log is flushed, and removed (durably) at start before anything can
//! be delivered. Finding it missing at start means the broker crashed (or was SIGKILLed)
//! last time: `delivered` records are written without an fsync of their own, so any
//! recovered message may have been handed to a consumer without its record reaching the disk,
//! and every recovered message is flagged redelivered (`VhostStore`). Qpid and RabbitMQ both
//! tell a clean from a dirty shutdown the same way (RabbitMQ's recovery terms) and Qpid flags
//! every message recovered after a restart as redelivered; a consumer must treat the flag as a
//! hint that it may have seen the message, never as a promise that it has.

use std::path::{Path, PathBuf};

use super::segment::sync_dir;

/// The marker's path under `data_dir`.
fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("clean-shutdown")
}

/// True if the last run stopped cleanly; removes the marker (so a crash of this run is seen
/// as one at the next start). A data dir without a message log yet counts as clean.
pub fn take_clean(data_dir: &Path, fresh: bool) -> std::io::Result<bool> {
    let path = marker(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(data_dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(fresh),
        Err(e) => Err(e),
    }
}

/// Writes the marker (after the store was flushed, at a graceful stop).
pub fn mark_clean(data_dir: &Path) {
    let path = marker(data_dir);
    let written = std::fs::File::create(&path)
        .and_then(|f| f.sync_all())
        .and_then(|()| sync_dir(data_dir));
    match written {
        Ok(()) => tracing::info!("store: clean shutdown recorded"),
        Err(e) => tracing::warn!(
            path = %path.display(),
            error = %e,
            "store: cannot record the clean shutdown; recovered messages will come back redelivered"
        ),
    }
}
