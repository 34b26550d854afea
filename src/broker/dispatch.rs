//! Fan-out of one routed message: merges overlapping bindings of the same destination into one
//! delivery (highest QoS, every subscription identifier) and applies No Local. Runs inline on
//! the publishing connection's task; the body is shared, never copied.

use std::sync::Arc;

use super::binding::{Binding, Delivery, Pending};
use super::message::Message;

/// Delivers `message` to every destination among `bindings`; returns how many destinations
/// received it. Deliveries to full inboxes are pushed onto `pending` for the caller to await.
pub fn dispatch(message: &Arc<Message>, bindings: &[Binding], pending: &mut Vec<Pending>) -> usize {
    match bindings {
        [] => 0,
        [only] => deliver_merged(message, &[only], pending),
        _ => {
            // Group bindings of the same destination; sorting by pointer keeps this
            // O(n log n) for wide fan-out instead of a quadratic search.
            let mut order: Vec<&Binding> = bindings.iter().collect();
            order.sort_unstable_by_key(|b| b.destination_key());
            let mut delivered = 0;
            let mut start = 0;
            while start < order.len() {
                let key = order[start].destination_key();
                let end = start
                    + order[start..]
                        .iter()
                        .take_while(|b| b.destination_key() == key)
                        .count();
                delivered += deliver_merged(message, &order[start..end], pending);
                start = end;
            }
            delivered
        }
    }
}

/// All of `group` share one destination.
fn deliver_merged(message: &Arc<Message>, group: &[&Binding], pending: &mut Vec<Pending>) -> usize {
    let destination = &group[0].destination;
    let from_self = match (&message.origin.client_id, destination.identity()) {
        (Some(origin), Some(me)) => &**origin == me,
        _ => false,
    };
    let mut delivery = Delivery::default();
    let mut matched = false;
    for binding in group {
        let o = &binding.options;
        if o.no_local && from_self {
            continue;
        }
        matched = true;
        delivery.qos = delivery.qos.max(o.max_qos.min(message.qos));
        delivery.retain_as_published |= o.retain_as_published;
        if let Some(id) = o.subscription_id {
            delivery.subscription_ids.push(id);
        }
    }
    if !matched {
        return 0;
    }
    delivery.subscription_ids.sort_unstable();
    delivery.subscription_ids.dedup();
    if let Some(wait) = destination.deliver(message, delivery) {
        pending.push(wait);
    }
    1
}
