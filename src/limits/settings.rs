//! The `[limits]` table: connection limits and the resource alarm thresholds, with the byte
//! size and memory watermark syntax RabbitMQ users know (`"0.4"`, `"512MiB"`, `"50MB"`).
//! Owns parsing only; the counters live in `connections.rs`, the alarms in `alarm.rs`.

use serde::Deserialize;

/// Limits settings (`[limits]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open client connections over all listeners and both protocols; 0 = unlimited (the
    /// default, as RabbitMQ and Mosquitto). Over it, new sockets are closed at accept.
    pub max_connections: u32,
    /// Open connections per authenticated user; 0 = unlimited (RabbitMQ's user
    /// `max-connections` limit). Anonymous MQTT clients are not counted per user.
    pub max_connections_per_user: u32,
    /// Memory high watermark: publishers are blocked while the broker's resident set is at or
    /// above it (RabbitMQ's `vm_memory_high_watermark`, same default 0.4 of RAM).
    pub memory_high_watermark: Watermark,
    /// Free space the data directory's file system must keep: publishers are blocked below it
    /// (RabbitMQ's `disk_free_limit`, same default 50 MB).
    pub disk_free_limit: ByteSize,
    /// How often memory and disk are measured, milliseconds.
    pub alarm_check_interval_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 0,
            max_connections_per_user: 0,
            memory_high_watermark: Watermark::Fraction(0.4),
            disk_free_limit: ByteSize(50_000_000),
            alarm_check_interval_ms: 100,
        }
    }
}

/// A memory limit: a fraction of the memory available to the process, or absolute bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Watermark {
    /// Fraction of total RAM (or of the cgroup's memory limit when that is lower), in (0, 1].
    Fraction(f64),
    /// Absolute bytes.
    Bytes(u64),
}

impl Watermark {
    /// The limit in bytes for a machine with `total` bytes of memory.
    pub fn resolve(self, total: u64) -> u64 {
        match self {
            Watermark::Bytes(b) => b,
            // Rounding down is fine: the watermark is a threshold, not an allocation.
            Watermark::Fraction(f) => (total as f64 * f) as u64,
        }
    }
}

impl std::str::FromStr for Watermark {
    type Err = String;

    /// `"0.4"` (a fraction, must be in (0, 1]) or a byte size such as `"512MiB"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // "1" and "0" read as fractions (RabbitMQ's relative watermark); a byte size needs
        // more than one byte to mean anything.
        if t.contains('.') || t == "0" || t == "1" {
            return t
                .parse::<f64>()
                .map_err(|_| format!("invalid memory_high_watermark {s:?}"))
                .and_then(fraction);
        }
        t.parse::<ByteSize>().map(|b| Watermark::Bytes(b.0))
    }
}

fn fraction(f: f64) -> Result<Watermark, String> {
    if f > 0.0 && f <= 1.0 {
        Ok(Watermark::Fraction(f))
    } else {
        Err(format!(
            "memory_high_watermark fraction {f} is outside (0, 1]"
        ))
    }
}

impl<'de> Deserialize<'de> for Watermark {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Float(f) => fraction(f).map_err(serde::de::Error::custom),
            NumberOrText::Int(i) => Ok(Watermark::Bytes(i)),
            NumberOrText::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A byte count written as an integer or with a unit: `"50MB"` (10^6), `"512MiB"` (2^20),
/// `kB`/`KiB`, `GB`/`GiB`, `TB`/`TiB`, or plain bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("invalid size {s:?} (want e.g. 50MB, 512MiB or bytes)"))?;
        let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1_000,
            "kib" => 1 << 10,
            "mb" | "m" => 1_000_000,
            "mib" => 1 << 20,
            "gb" | "g" => 1_000_000_000,
            "gib" => 1 << 30,
            "tb" | "t" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => return Err(format!("unknown size unit {other:?} in {s:?}")),
        };
        n.checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Int(i) => Ok(ByteSize(i)),
            NumberOrText::Float(f) => Err(serde::de::Error::custom(format!(
                "size {f} must be a whole number of bytes"
            ))),
            NumberOrText::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Int(u64),
    Float(f64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_a_fraction_or_a_size() {
        assert_eq!("0.4".parse(), Ok(Watermark::Fraction(0.4)));
        assert_eq!("1".parse(), Ok(Watermark::Fraction(1.0)));
        assert_eq!("512MiB".parse(), Ok(Watermark::Bytes(512 << 20)));
        assert_eq!("200MB".parse(), Ok(Watermark::Bytes(200_000_000)));
        assert!("1.5".parse::<Watermark>().is_err());
        assert!("0".parse::<Watermark>().is_err());
        assert!("lots".parse::<Watermark>().is_err());
        assert_eq!(Watermark::Fraction(0.5).resolve(1000), 500);
    }

    #[test]
    fn byte_sizes_take_decimal_and_binary_units() {
        assert_eq!("50MB".parse(), Ok(ByteSize(50_000_000)));
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("123".parse(), Ok(ByteSize(123)));
        assert!("12 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999TB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn toml_accepts_numbers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            limits: LimitsConfig,
        }
        let t: T = toml::from_str(
            "[limits]\nmemory_high_watermark = 0.3\ndisk_free_limit = \"1GB\"\nmax_connections = 5\n",
        )
        .unwrap();
        assert_eq!(t.limits.memory_high_watermark, Watermark::Fraction(0.3));
        assert_eq!(t.limits.disk_free_limit, ByteSize(1_000_000_000));
        assert_eq!(t.limits.max_connections, 5);
        let t: T = toml::from_str("[limits]\nmemory_high_watermark = \"64MiB\"\n").unwrap();
        assert_eq!(t.limits.memory_high_watermark, Watermark::Bytes(64 << 20));
        assert!(toml::from_str::<T>("[limits]\nmemory_high_watermark = 3.0\n").is_err());
    }
}
