//! SIGHUP for `[limits]`: re-reads the config file the broker started with and applies its
//! connection limits and alarm thresholds (as `rabbitmqctl set_vm_memory_high_watermark` and
//! `set_disk_free_limit` change them at runtime). Other settings need a restart.

use std::path::Path;

use super::Limits;

/// Re-reads `[limits]` from `file` and applies it; a missing or broken file keeps the
/// current limits (logged).
pub fn from_file(file: Option<&Path>, limits: &Limits) {
    let Some(file) = file else {
        tracing::info!("SIGHUP: no config file, limits unchanged");
        return;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "SIGHUP: cannot read config; limits unchanged");
            return;
        }
    };
    match crate::config::Config::from_toml(&text) {
        Ok(config) => {
            tracing::info!(file = %file.display(), "SIGHUP: reloading [limits]");
            limits.reload(&config.limits);
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "SIGHUP: invalid config; limits unchanged");
        }
    }
}
