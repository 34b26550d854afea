//! RabbitMQ's delivery acknowledgement timeout (`consumer_timeout`): a channel whose oldest
//! unacknowledged delivery is older than the timeout is closed with 406 PRECONDITION_FAILED, and
//! its unacknowledged messages are requeued (by the ordinary channel release).
//!
//! Cheap by construction: delivery tags grow with time, so the oldest unacknowledged delivery is
//! the first entry of the channel's `unacked` map; the connection loop looks at that one entry
//! per channel on a coarse timer ([`check_interval`]), never per delivery.
//!
//! The timeout is the `[amqp] consumer_timeout_ms` setting (RabbitMQ's default, 30 minutes).

use std::time::Duration;

/// The longest pause between two checks (RabbitMQ checks on its channel tick, once a minute).
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest pause between two checks, whatever the timeout.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How often the connection loop looks for timed-out deliveries: a tenth of the timeout, within
/// [`MIN_CHECK_INTERVAL`, `MAX_CHECK_INTERVAL`], so a delivery is caught at most 10% late
/// (or a minute, for the default).
pub fn check_interval(timeout: Duration) -> Duration {
    (timeout / 10).clamp(MIN_CHECK_INTERVAL, MAX_CHECK_INTERVAL)
}

/// RabbitMQ's reply text (after "PRECONDITION_FAILED - ").
pub fn reply_text(channel: u16, timeout: Duration) -> String {
    format!(
        "delivery acknowledgement on channel {channel} timed out. Timeout value used: {} ms. \
         This timeout value can be configured, see consumers doc guide to learn more",
        timeout.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_interval_is_a_tenth_within_bounds() {
        assert_eq!(
            check_interval(Duration::from_millis(1_800_000)),
            MAX_CHECK_INTERVAL
        );
        assert_eq!(
            check_interval(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(check_interval(Duration::from_millis(1)), MIN_CHECK_INTERVAL);
    }

    #[test]
    fn reply_text_matches_rabbitmq() {
        assert_eq!(
            reply_text(1, Duration::from_millis(1_800_000)),
            "delivery acknowledgement on channel 1 timed out. Timeout value used: 1800000 ms. \
             This timeout value can be configured, see consumers doc guide to learn more"
        );
    }
}
