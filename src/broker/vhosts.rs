//! The registry of vhosts besides the default `/`: those defined at start are opened by
//! `Core::new` with what the store kept of them; a vhost added later (`ferromq vhost add`, or
//! named in `[[permissions]]`) gets its exchanges and queues in the core when a connection
//! first opens it, and records its durable definitions and messages like the others. Owns
//! lookup and lazy creation only; whether a vhost exists is `auth`'s answer, so a deleted vhost
//! refuses new connections (connections already in it keep their handle until they close, and
//! its contents go with the last of them) and its durable definitions are forgotten. One
//! deleted and added again (a new incarnation in the access file) is a new, empty vhost.

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
            if let Some((_, old)) = self.vhosts.remove(name) {
                self.retire(&old);
            }
            return None;
        }
        let now = self.auth.vhost_incarnation(name);
        // Deleted and added again since it was opened: the old one goes, as if deleted.
        if let Some((_, old)) = self.vhosts.remove_if(name, |_, v| v.incarnation != now) {
            tracing::info!(
                vhost = name,
                "vhost was deleted and added again: starting it empty"
            );
            self.retire(&old);
        }
        let host = self
            .vhosts
            .entry(name.to_string())
            .or_insert_with(|| {
                tracing::info!(vhost = name, "vhost opened");
                let host = super::open_vhost(name, now, &self.config, &self.messages, self.unclean);
                if let Some(d) = &self.definitions {
                    // The incarnation first, so the definitions that follow are of it.
                    super::record_incarnation(d, &host, None);
                    host.enable_definitions(Arc::clone(d));
                }
                host
            })
            .clone();
        Some(host)
    }

    /// Forgets `old`, a vhost deleted while it was open: its durable definitions go (durably)
    /// and it records no more; its messages are settled at the next start, as nothing claims
    /// them. Connections still in it keep it until they close.
    fn retire(&self, old: &super::vhost::Vhost) {
        old.retire();
        if let Some(d) = &self.definitions {
            d.forget_vhost(&old.name);
        }
    }
}
