//! One serde `Config` tree for the whole broker, merged CLI > environment (`FERROMQ_*`) > TOML
//! file > built-in defaults. Owns parsing and validation of settings; knows nothing of sockets.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use crate::transport::config::{ClientCertMode, IdentitySource, TlsConfig};

/// Where a listener binds, or `Off` to disable it (the literal value `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Bind this address (port 0 picks a free port).
    Addr(SocketAddr),
    /// The listener is disabled.
    Off,
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse()
            .map(Listen::Addr)
            .map_err(|e| format!("invalid listen address {s:?} (want HOST:PORT or off): {e}"))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The complete broker configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// MQTT (TCP) listener; key `mqtt_listen`, flag `--mqtt-listen`, env `FERROMQ_MQTT_LISTEN`.
    pub mqtt_listen: Listen,
    /// AMQP 0-9-1 listener; key `amqp_listen`, flag `--amqp-listen`, env `FERROMQ_AMQP_LISTEN`.
    pub amqp_listen: Listen,
    /// MQTT over TLS listener (conventionally port 8883), off by default; key `mqtts_listen`.
    pub mqtts_listen: Listen,
    /// AMQP 0-9-1 over TLS listener (conventionally port 5671), off by default; key
    /// `amqps_listen`.
    pub amqps_listen: Listen,
    /// TLS settings for the TLS listeners, table `[tls]`.
    pub tls: TlsConfig,
    /// MQTT over WebSocket listener (Mosquitto / RabbitMQ web-mqtt), off by default; key
    /// `mqtt_ws_listen`.
    pub mqtt_ws_listen: Listen,
    /// MQTT over secure WebSocket (TLS from `[tls]`), off by default; key `mqtt_wss_listen`.
    pub mqtt_wss_listen: Listen,
    /// HTTP path of the WebSocket endpoint; key `mqtt_ws_path`.
    pub mqtt_ws_path: String,
    /// Data directory; key `data_dir`, flag `--data-dir`, env `FERROMQ_DATA_DIR`.
    pub data_dir: PathBuf,
    /// tracing filter (e.g. `info`, `ferromq=debug`); key `log_level`.
    pub log_level: String,
    /// MQTT protocol settings, table `[mqtt]`.
    pub mqtt: MqttConfig,
    /// AMQP protocol settings, table `[amqp]`.
    pub amqp: AmqpConfig,
    /// Durable storage under `data_dir`, table `[store]` (fsync policy, segment size).
    pub store: crate::store::StoreConfig,
    /// Login settings, table `[auth]`.
    pub auth: crate::auth::settings::AuthConfig,
    /// Users declared here (`[[users]]`), besides those in `<data_dir>/auth.toml`.
    pub users: Vec<crate::auth::settings::UserConfig>,
    /// Permissions declared here (`[[permissions]]`).
    pub permissions: Vec<crate::auth::settings::PermissionConfig>,
    /// Connection limits and resource alarms, table `[limits]`.
    pub limits: crate::limits::LimitsConfig,
    /// The file this configuration was read from (SIGHUP re-reads its `[limits]`).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// AMQP settings (`[amqp]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// Milliseconds a delivery may stay unacknowledged before its channel is closed with 406
    /// (RabbitMQ's `consumer_timeout`, same default: 30 minutes).
    pub consumer_timeout_ms: u64,
    /// Largest frame the broker offers and accepts in connection.tune, bytes (RabbitMQ's
    /// `frame_max`, same default 131072; at least 4096, the spec's frame-min-size).
    pub frame_max: u32,
    /// Highest channel number offered in connection.tune (RabbitMQ's `channel_max`, same
    /// default 2047); a client asking for more gets this, above it connection.close 504.
    pub channel_max: u16,
    /// Seconds a new AMQP connection may take from accept (after TLS, which has its own
    /// timeout) to connection.open-ok (RabbitMQ's `handshake_timeout`, same default 10 s);
    /// slower ones are closed.
    pub handshake_timeout_secs: u64,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            consumer_timeout_ms: 1_800_000,
            frame_max: 131_072,
            channel_max: 2047,
            handshake_timeout_secs: 10,
        }
    }
}

/// MQTT settings (`[mqtt]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Largest packet accepted from a client, bytes (v5: advertised as Maximum Packet Size).
    pub max_packet_size: usize,
    /// Receive Maximum the broker advertises: QoS 2 publishes a client may have unreleased.
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 messages in flight per client when the client sets no Receive Maximum.
    pub max_inflight: u16,
    /// Messages queued per session beyond the inflight window before new ones are dropped
    /// (Mosquitto's `max_queued_messages`).
    pub max_queued_messages: usize,
    /// Topic Alias Maximum the broker accepts from v5 clients.
    pub topic_alias_maximum: u16,
    /// Seconds a new socket may take to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Largest keep alive the broker accepts; larger requests are lowered for v5 (Server Keep
    /// Alive) and refused for 3.1 / 3.1.1, which cannot be told (CONNACK 0x02, as Mosquitto).
    pub max_keepalive_secs: u16,
    /// Interval of the `$SYS/broker/...` updates, seconds; 0 disables them.
    pub sys_interval_secs: u64,
    /// The exchange MQTT publishes route through (RabbitMQ's `mqtt.exchange`).
    pub exchange: String,
    /// Clients without a user name may connect (Mosquitto's `allow_anonymous`).
    pub allow_anonymous: bool,
    /// Topic ACLs in Mosquitto's `acl_file` syntax; none = every topic allowed.
    pub acl_file: Option<PathBuf>,
    /// The vhost of clients whose user name has no `vhost:` prefix (RabbitMQ's `mqtt.vhost`).
    pub vhost: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mqtt_listen: Listen::Addr(SocketAddr::from(([0, 0, 0, 0], 1883))),
            amqp_listen: Listen::Addr(SocketAddr::from(([0, 0, 0, 0], 5672))),
            mqtts_listen: Listen::Off,
            amqps_listen: Listen::Off,
            tls: TlsConfig::default(),
            mqtt_ws_listen: Listen::Off,
            mqtt_wss_listen: Listen::Off,
            mqtt_ws_path: "/mqtt".to_string(),
            data_dir: PathBuf::from("./ferromq-data"),
            log_level: "info".to_string(),
            mqtt: MqttConfig::default(),
            amqp: AmqpConfig::default(),
            store: crate::store::StoreConfig::default(),
            auth: Default::default(),
            users: Vec::new(),
            permissions: Vec::new(),
            limits: crate::limits::LimitsConfig::default(),
            source: None,
        }
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_packet_size: 16 * 1024 * 1024,
            receive_maximum: 1024,
            max_inflight: 64,
            max_queued_messages: 10_000,
            topic_alias_maximum: 64,
            connect_timeout_secs: 10,
            max_keepalive_secs: 65_535,
            sys_interval_secs: 10,
            exchange: "amq.topic".to_string(),
            allow_anonymous: true,
            acl_file: None,
            vhost: "/".to_string(),
        }
    }
}

/// Settings given on the command line or in the environment; `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--mqtt-listen`.
    pub mqtt_listen: Option<Listen>,
    /// `--amqp-listen`.
    pub amqp_listen: Option<Listen>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--mqtts-listen`.
    pub mqtts_listen: Option<Listen>,
    /// `--amqps-listen`.
    pub amqps_listen: Option<Listen>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--tls-ca`.
    pub tls_ca: Option<PathBuf>,
    /// `--tls-crl`.
    pub tls_crl: Option<PathBuf>,
    /// `--tls-client-cert`.
    pub tls_client_cert: Option<ClientCertMode>,
    /// `--tls-identity`.
    pub tls_identity: Option<IdentitySource>,
    /// `--mqtt-identity-as-username` (only ever turns it on).
    pub mqtt_identity_as_username: Option<bool>,
    /// `--mqtt-ws-listen`.
    pub mqtt_ws_listen: Option<Listen>,
    /// `--mqtt-wss-listen`.
    pub mqtt_wss_listen: Option<Listen>,
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

impl Overrides {
    /// Applies (and takes) the TLS and WebSocket listener and `--tls-*` overrides.
    fn apply_tls(&mut self, config: &mut Config) {
        let tls = &mut config.tls;
        if let Some(v) = self.mqtts_listen.take() {
            config.mqtts_listen = v;
        }
        if let Some(v) = self.amqps_listen.take() {
            config.amqps_listen = v;
        }
        if let Some(v) = self.tls_cert.take() {
            tls.cert = Some(v);
        }
        if let Some(v) = self.tls_key.take() {
            tls.key = Some(v);
        }
        if let Some(v) = self.tls_ca.take() {
            tls.ca = Some(v);
        }
        if let Some(v) = self.tls_crl.take() {
            tls.crl = Some(v);
        }
        if let Some(v) = self.tls_client_cert.take() {
            tls.client_cert = v;
        }
        if let Some(v) = self.tls_identity.take() {
            tls.identity = v;
        }
        if let Some(v) = self.mqtt_identity_as_username.take() {
            tls.mqtt_identity_as_username = v;
        }
        if let Some(v) = self.mqtt_ws_listen.take() {
            config.mqtt_ws_listen = v;
        }
        if let Some(v) = self.mqtt_wss_listen.take() {
            config.mqtt_wss_listen = v;
        }
    }
}

impl Config {
    /// Parses a TOML document (missing keys take their defaults).
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Loads `file` (if any) over the defaults, then applies `overrides` (CLI and environment,
    /// already merged by clap with CLI first).
    pub fn load(
        file: Option<&std::path::Path>,
        mut overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?
            }
            None => Config::default(),
        };
        config.source = file.map(|p| p.to_path_buf());
        overrides.apply_tls(&mut config);
        if let Some(v) = overrides.mqtt_listen {
            config.mqtt_listen = v;
        }
        if let Some(v) = overrides.amqp_listen {
            config.amqp_listen = v;
        }
        if let Some(v) = overrides.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = overrides.log_level {
            config.log_level = v;
        }
        Ok(config)
    }

    /// A configuration for tests and embedding: MQTT and AMQP on `127.0.0.1:0`, nothing
    /// written to disk (the store is in memory).
    pub fn ephemeral() -> Config {
        Config {
            mqtt_listen: Listen::Addr(SocketAddr::from(([127, 0, 0, 1], 0))),
            amqp_listen: Listen::Addr(SocketAddr::from(([127, 0, 0, 1], 0))),
            store: crate::store::StoreConfig {
                in_memory: true,
                ..crate::store::StoreConfig::default()
            },
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_disables_a_listener() {
        assert_eq!("off".parse::<Listen>(), Ok(Listen::Off));
        assert_eq!("OFF".parse::<Listen>(), Ok(Listen::Off));
        assert!("nonsense".parse::<Listen>().is_err());
    }

    #[test]
    fn file_values_fill_in_and_overrides_win() {
        let dir = std::env::temp_dir().join(format!("ferromq-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "mqtt_listen = \"127.0.0.1:1999\"\namqp_listen = \"off\"\nlog_level = \"debug\"\n[mqtt]\nmax_inflight = 7\n",
        )
        .unwrap();
        let overrides = Overrides {
            log_level: Some("warn".into()),
            ..Overrides::default()
        };
        let c = Config::load(Some(&path), overrides).unwrap();
        assert_eq!(c.mqtt_listen, "127.0.0.1:1999".parse().unwrap());
        assert_eq!(c.amqp_listen, Listen::Off);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.mqtt.max_inflight, 7);
        assert_eq!(
            c.mqtt.max_queued_messages,
            MqttConfig::default().max_queued_messages
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn amqp_table_parses() {
        let c = Config::from_toml("[amqp]\nconsumer_timeout_ms = 5000\n").unwrap();
        assert_eq!(c.amqp.consumer_timeout_ms, 5000);
        assert_eq!(Config::default().amqp.consumer_timeout_ms, 1_800_000);
    }

    #[test]
    fn store_table_parses_with_a_safe_default() {
        let c = Config::from_toml("[store]\nfsync = \"never\"\nsegment_bytes = 4096\n").unwrap();
        assert_eq!(c.store.fsync, crate::store::FsyncPolicy::Never);
        assert_eq!(c.store.segment_bytes, 4096);
        assert_eq!(
            Config::default().store.fsync,
            crate::store::FsyncPolicy::Batch
        );
        assert!(!Config::default().store.in_memory);
        assert!(Config::ephemeral().store.in_memory);
        assert!(Config::from_toml("[store]\nfsync = \"sometimes\"\n").is_err());
    }

    #[test]
    fn tls_listeners_are_off_by_default_and_overridable() {
        let c = Config::default();
        assert_eq!((c.mqtts_listen, c.amqps_listen), (Listen::Off, Listen::Off));
        let c = Config::from_toml(
            "mqtts_listen = \"127.0.0.1:8883\"\n[tls]\nclient_cert = \"required\"\n",
        )
        .unwrap();
        assert_eq!(c.mqtts_listen, "127.0.0.1:8883".parse().unwrap());
        assert_eq!(c.tls.client_cert, ClientCertMode::Required);
        let mut c = Config::default();
        Overrides {
            amqps_listen: Some("127.0.0.1:5671".parse().unwrap()),
            tls_client_cert: Some(ClientCertMode::Optional),
            ..Overrides::default()
        }
        .apply_tls(&mut c);
        assert_eq!(c.amqps_listen, "127.0.0.1:5671".parse().unwrap());
        assert_eq!(c.tls.client_cert, ClientCertMode::Optional);
    }

    #[test]
    fn websocket_listeners_are_off_by_default_on_path_mqtt() {
        let c = Config::default();
        assert_eq!(
            (c.mqtt_ws_listen, c.mqtt_wss_listen),
            (Listen::Off, Listen::Off)
        );
        assert_eq!(c.mqtt_ws_path, "/mqtt");
        let c = Config::from_toml("mqtt_ws_listen = \"127.0.0.1:8080\"\nmqtt_ws_path = \"/ws\"\n")
            .unwrap();
        assert_eq!(c.mqtt_ws_listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.mqtt_ws_path, "/ws");
    }

    #[test]
    fn limits_and_amqp_tuning_parse() {
        let c = Config::from_toml(
            "[amqp]\nframe_max = 8192\nchannel_max = 16\nhandshake_timeout_secs = 3\n[limits]\nmax_connections = 3\nmemory_high_watermark = \"512MiB\"\n",
        )
        .unwrap();
        assert_eq!((c.amqp.frame_max, c.amqp.channel_max), (8192, 16));
        assert_eq!(c.amqp.handshake_timeout_secs, 3);
        assert_eq!(Config::default().amqp.handshake_timeout_secs, 10);
        assert_eq!(c.limits.max_connections, 3);
        assert_eq!(
            c.limits.memory_high_watermark,
            crate::limits::Watermark::Bytes(512 << 20)
        );
        let d = Config::default();
        assert_eq!((d.amqp.frame_max, d.amqp.channel_max), (131_072, 2047));
        assert_eq!(
            d.limits.disk_free_limit,
            crate::limits::ByteSize(50_000_000)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::from_toml("mqtt_lisen = \"x\"").is_err());
    }
}
