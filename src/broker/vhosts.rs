//! The registry of vhosts besides the default `/`: those defined at start are opened by
//! `Core::new` with what the store kept of them; a vhost added later (`ferromq vhost add`, or
//! named in `[[permissions]]`) gets its exchanges and queues in the core when a connection
//! first opens it, and records its durable definitions and messages like the others. Owns
//! lookup and lazy creation only; whether a vhost exists is `auth`'s answer, so a deleted vhost
//! refuses new connections (connections already in it keep their handle until they close, and
//! its contents go with the last of them) and its durable definitions are forgotten.

use std::sync::Arc;

use super::vhost::Vhost;
use super::Core;

impl Core {
    /// The vhost called `name`, created on first use; `None` when it is not defined.
    pub fn vhost_named(&self, name: &str) -> Option<Arc<Vhost>> {
        if *self.vhost.name == *name {
            return Some(Arc::clone(&self.vhost));
        }
        if !self.auth.vhost_exists(name) {
            // Deleted meanwhile: forget it, so a vhost added again under the name starts empty
            // (after a restart too).
            if self.vhosts.remove(name).is_some() {
                if let Some(d) = &self.definitions {
                    d.forget_vhost(name);
                }
            }
            return None;
        }
        let host = self
            .vhosts
            .entry(name.to_string())
            .or_insert_with(|| {
                tracing::info!(vhost = name, "vhost opened");
                let host = super::open_vhost(name, &self.config, &self.messages, self.unclean);
                if let Some(d) = &self.definitions {
                    host.enable_definitions(Arc::clone(d));
                }
                host
            })
            .clone();
        Some(host)
    }
}
