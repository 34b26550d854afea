//! `exchange.declare` and `exchange.delete` with RabbitMQ 3.x semantics: the default exchange
//! cannot be declared or deleted, `amq.` names are reserved for new exchanges and the built-in
//! ones cannot be deleted, a redeclaration must match (type, durable, auto-delete, internal,
//! `alternate-exchange`), and deleting a missing exchange succeeds.

use std::sync::Arc;

use super::args;
use super::{default_exchange_refused, Vhost, VhostError};
use crate::broker::exchange::{Exchange, ExchangeSettings};
use crate::store::definitions::Change;

impl Vhost {
    /// `exchange.declare`. Passive: 404 if missing. Otherwise creates the exchange, or checks
    /// that the existing one was declared alike (406 `inequivalent arg ...`). New names starting
    /// with `amq.` are refused (403), as is any declaration of the default exchange.
    pub fn declare_exchange(
        &self,
        name: &str,
        settings: ExchangeSettings,
        passive: bool,
    ) -> Result<(), VhostError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        let _reg = self.lock_registry();
        match self.exchange(name) {
            Some(_) if passive => Ok(()),
            None if passive => Err(self.no_exchange(name)),
            Some(existing) => self.assert_exchange_equivalent(&existing, &settings),
            None => {
                if name.starts_with("amq.") {
                    return Err(VhostError::AccessRefused(format!(
                        "exchange name '{name}' contains reserved prefix 'amq.*'"
                    )));
                }
                args::check_exchange_args(&self.resource("exchange", name), &settings.arguments)?;
                if settings.durable {
                    self.log_definition(Change::Exchange(name.to_string(), settings.clone()));
                }
                self.exchanges
                    .insert(name.into(), Arc::new(Exchange::new(name, settings)));
                Ok(())
            }
        }
    }

    /// `exchange.delete`: removes the exchange and every binding from or to it. A missing
    /// exchange is not an error (RabbitMQ 3.x). `if_unused`: refused (406) while it is the
    /// source of a binding. The default, `amq.*` and MQTT exchanges cannot be deleted (403).
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), VhostError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") || name == &*self.mqtt_exchange.name {
            return Err(VhostError::AccessRefused(format!(
                "deletion of system {} not allowed",
                self.resource("exchange", name)
            )));
        }
        let mut reg = self.lock_registry();
        let Some(x) = self.exchange(name) else {
            return Ok(());
        };
        if if_unused && reg.bindings.has_source(name) {
            return Err(VhostError::PreconditionFailed(format!(
                "{} in use",
                self.resource("exchange", name)
            )));
        }
        let emptied = self.remove_exchange(&mut reg, &x);
        self.auto_delete_exchanges(&mut reg, emptied);
        Ok(())
    }

    fn assert_exchange_equivalent(
        &self,
        x: &Exchange,
        received: &ExchangeSettings,
    ) -> Result<(), VhostError> {
        let resource = self.resource("exchange", &x.name);
        let current = &x.settings;
        let quoted = |s: &str| format!("'{s}'");
        if current.kind != received.kind {
            return Err(args::inequivalent(
                &resource,
                "type",
                &quoted(received.kind.as_str()),
                &quoted(current.kind.as_str()),
            ));
        }
        for (key, current, received) in [
            ("durable", current.durable, received.durable),
            ("auto_delete", current.auto_delete, received.auto_delete),
            ("internal", current.internal, received.internal),
        ] {
            if current != received {
                return Err(args::inequivalent(
                    &resource,
                    key,
                    &quoted(&received.to_string()),
                    &quoted(&current.to_string()),
                ));
            }
        }
        args::assert_exchange_equivalent(&resource, &current.arguments, &received.arguments)
    }
}
