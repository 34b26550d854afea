//! What one MQTT client may do, settled at CONNECT: its user, the topic ACL rules with `%u` /
//! `%c` filled in (`auth::acl`), and, for a named user, RabbitMQ's vhost permissions on the
//! MQTT exchange (publishing needs write on it, subscribing read, as RabbitMQ's MQTT plugin
//! checks). Anonymous clients are bound by the ACL only. Checked on PUBLISH, SUBSCRIBE, the
//! will and every message sent to the client (the ACL's read rules, as Mosquitto); the codes
//! for a refusal come from `reason.rs`. The grants follow the access snapshot: after a reload
//! (SIGHUP, `ferromq permissions ...`) a connected client is checked against the new rules at
//! its next publish, subscribe or delivery, as Mosquitto applies a reloaded ACL file to the
//! clients already connected.

use std::sync::Arc;

use crate::auth::acl::ClientAcl;
use crate::auth::permissions::{Access, Permission, Resource};
use crate::auth::AccessControl;

/// One client's grants.
#[derive(Debug, Clone, Default)]
pub struct ClientAccess {
    /// The authenticated user (`None` = anonymous).
    pub user: Option<Arc<str>>,
    acl: Option<ClientAcl>,
    exchange_write: bool,
    exchange_read: bool,
    /// The access snapshot (`AccessControl::generation`) these grants come from.
    generation: u64,
}

impl ClientAccess {
    /// Grants for `user` with `permission` on the vhost (`None` for anonymous clients, which
    /// vhost permissions do not bind) and `acl` (`None` when no ACL file is configured).
    fn new(
        user: Option<&str>,
        permission: Option<&Permission>,
        acl: Option<ClientAcl>,
        exchange: &str,
    ) -> ClientAccess {
        let allows =
            |access| permission.is_none_or(|p| p.allows(access, Resource::Exchange, exchange));
        ClientAccess {
            user: user.map(Arc::from),
            acl,
            exchange_write: allows(Access::Write),
            exchange_read: allows(Access::Read),
            generation: 0,
        }
    }

    /// The grants of `user` (client `client_id`) in `vhost` as the access snapshot has them
    /// now. A named user without permissions there (revoked since CONNECT) may do nothing.
    pub fn current(
        auth: &AccessControl,
        user: Option<&str>,
        client_id: &str,
        vhost: &str,
        exchange: &str,
    ) -> ClientAccess {
        // Read first: a change racing with the lookups below is caught at the next check.
        let generation = auth.generation();
        let acl = auth.client_acl(user, client_id);
        let mut access = match user {
            None => ClientAccess::new(None, None, acl, exchange),
            Some(u) => match auth.permission(u, vhost) {
                Some(p) => ClientAccess::new(user, Some(&p), acl, exchange),
                // Revoked since CONNECT: no grant, and an ACL without rules refuses every topic.
                None => ClientAccess {
                    user: Some(Arc::from(u)),
                    acl: Some(ClientAcl::default()),
                    ..ClientAccess::default()
                },
            },
        };
        access.generation = generation;
        access
    }

    /// True when the access snapshot changed since these grants were computed.
    pub fn is_stale(&self, auth: &AccessControl) -> bool {
        auth.generation() != self.generation
    }

    /// May the client publish to `topic`?
    pub fn may_publish(&self, topic: &str) -> bool {
        self.exchange_write && self.acl.as_ref().is_none_or(|a| a.may_publish(topic))
    }

    /// May the client be sent a message published to `topic`? (The vhost read permission was
    /// checked at SUBSCRIBE; the ACL's rules are per topic.)
    pub fn may_receive(&self, topic: &str) -> bool {
        self.acl.as_ref().is_none_or(|a| a.may_read(topic))
    }

    /// May the client subscribe to `filter` (without any `$share/group/` prefix)?
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.exchange_read && self.acl.as_ref().is_none_or(|a| a.may_subscribe(filter))
    }
}
