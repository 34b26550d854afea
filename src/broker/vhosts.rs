//! The registry of vhosts besides the default `/`: a vhost defined in the access file
//! (`ferromq vhost add`, or named in `[[permissions]]`) gets its exchanges and queues in the
//! core when a connection first opens it. Owns lookup and lazy creation only; whether a vhost
//! exists is `auth`'s answer, so a deleted vhost refuses new connections (connections already
//! in it keep their handle until they close, and its contents go with the last of them).

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
            // Deleted meanwhile: forget it, so a vhost added again under the name starts empty.
            self.vhosts.remove(name);
            return None;
        }
        let host = self
            .vhosts
            .entry(name.to_string())
            .or_insert_with(|| {
                tracing::info!(vhost = name, "vhost opened");
                Vhost::new(name, &self.config.mqtt.exchange, Arc::clone(&self.store))
            })
            .clone();
        Some(host)
    }
}
