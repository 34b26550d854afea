//! Certificate hot reload: on SIGHUP (wired in `server.rs`) and when the files change. The
//! change check is a `stat` of at most four files every `[tls] watch_interval_secs`, cheaper
//! than a filesystem-notification dependency and it also sees files replaced by rename (as
//! certbot and Kubernetes secret mounts do). Owns no TLS state: it calls
//! [`TlsAcceptor::reload`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::tls::TlsAcceptor;

/// Reloads `acceptor` now, logging the outcome; `why` names the trigger.
pub fn reload_now(acceptor: &TlsAcceptor, why: &str) {
    match acceptor.reload() {
        Ok(()) => tracing::info!("TLS certificates reloaded ({why}); new connections use them"),
        Err(e) => tracing::error!(
            error = %e,
            "TLS reload ({why}) failed, keeping the previous certificates: {e}"
        ),
    }
}

/// Polls the acceptor's files every `interval` and reloads when any of them changed (size,
/// modification time, or appearing / disappearing). Returns on shutdown.
pub async fn watch_files(
    acceptor: Arc<TlsAcceptor>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let files = acceptor.files();
    let mut seen = fingerprint(&files);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let now = fingerprint(&files);
        if now != seen {
            // Remember what we tried even if the reload fails: a half-written file changes
            // again when the writer finishes, which triggers the next attempt.
            seen = now;
            reload_now(&acceptor, "certificate files changed");
        }
    }
}

type Fingerprint = Vec<Option<(u64, SystemTime)>>;

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.len(), m.modified().ok()?))
        })
        .collect()
}
