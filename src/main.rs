//! The `ferromq` binary: command line + config -> tracing -> `ferromq::run`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ferromq::config::{ClientCertMode, Config, IdentitySource, Listen, Overrides};

/// ferromq: an MQTT 3.1/3.1.1/5.0 and AMQP 0-9-1 message broker.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// MQTT listener address, or `off` [default: 0.0.0.0:1883]
    #[arg(long, env = "FERROMQ_MQTT_LISTEN", value_name = "ADDR")]
    mqtt_listen: Option<Listen>,
    /// AMQP 0-9-1 listener address, or `off` [default: 0.0.0.0:5672]
    #[arg(long, env = "FERROMQ_AMQP_LISTEN", value_name = "ADDR")]
    amqp_listen: Option<Listen>,
    /// Data directory [default: ./ferromq-data]
    #[arg(long, env = "FERROMQ_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (CLI > env > file > defaults)
    #[arg(long, env = "FERROMQ_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `ferromq=debug` [default: info]
    #[arg(long, env = "FERROMQ_LOG_LEVEL", value_name = "LEVEL")]
    log_level: Option<String>,
    /// MQTT over TLS listener address (conventionally port 8883), or `off` [default: off]
    #[arg(long, env = "FERROMQ_MQTTS_LISTEN", value_name = "ADDR")]
    mqtts_listen: Option<Listen>,
    /// AMQP over TLS listener address (conventionally port 5671), or `off` [default: off]
    #[arg(long, env = "FERROMQ_AMQPS_LISTEN", value_name = "ADDR")]
    amqps_listen: Option<Listen>,
    /// Server certificate chain for the TLS listeners, PEM
    #[arg(long, env = "FERROMQ_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Server private key, PEM
    #[arg(long, env = "FERROMQ_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// CA certificates client certificates must chain to, PEM
    #[arg(long, env = "FERROMQ_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Certificate revocation lists checked against client certificates, PEM
    #[arg(long, env = "FERROMQ_TLS_CRL", value_name = "FILE")]
    tls_crl: Option<PathBuf>,
    /// Client certificates: none, optional or required [default: none]
    #[arg(long, env = "FERROMQ_TLS_CLIENT_CERT", value_name = "MODE")]
    tls_client_cert: Option<ClientCertMode>,
    /// User name of a client certificate: common_name, distinguished_name, san_email, san_dns
    /// or san_uri [default: common_name]
    #[arg(long, env = "FERROMQ_TLS_IDENTITY", value_name = "SOURCE")]
    tls_identity: Option<IdentitySource>,
    /// MQTT over TLS: the client certificate's identity is the user name (Mosquitto's
    /// use_identity_as_username)
    #[arg(long, env = "FERROMQ_MQTT_IDENTITY_AS_USERNAME")]
    mqtt_identity_as_username: bool,
    /// MQTT over WebSocket listener address (path /mqtt, subprotocol mqtt), or `off` [default: off]
    #[arg(long, env = "FERROMQ_MQTT_WS_LISTEN", value_name = "ADDR")]
    mqtt_ws_listen: Option<Listen>,
    /// MQTT over secure WebSocket listener address (TLS settings as above), or `off` [default: off]
    #[arg(long, env = "FERROMQ_MQTT_WSS_LISTEN", value_name = "ADDR")]
    mqtt_wss_listen: Option<Listen>,
    /// Administration commands; without one, the broker runs.
    #[command(subcommand)]
    command: Option<ferromq::admin::Command>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = Overrides {
        mqtt_listen: cli.mqtt_listen,
        amqp_listen: cli.amqp_listen,
        data_dir: cli.data_dir,
        log_level: cli.log_level,
        mqtts_listen: cli.mqtts_listen,
        amqps_listen: cli.amqps_listen,
        tls_cert: cli.tls_cert,
        tls_key: cli.tls_key,
        tls_ca: cli.tls_ca,
        tls_crl: cli.tls_crl,
        tls_client_cert: cli.tls_client_cert,
        tls_identity: cli.tls_identity,
        // A flag can only turn it on; the file may also set it.
        mqtt_identity_as_username: cli.mqtt_identity_as_username.then_some(true),
        mqtt_ws_listen: cli.mqtt_ws_listen,
        mqtt_wss_listen: cli.mqtt_wss_listen,
    };
    let config = Config::load(cli.config.as_deref(), overrides)?;
    if let Some(command) = &cli.command {
        // Administration: edit the data dir's access file and exit, no broker, no logging.
        match ferromq::admin::run(command, &config.data_dir) {
            Ok(out) => {
                print!("{out}");
                return Ok(());
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    tracing_subscriber::fmt()
        // Colour codes only for a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log_level)
                .with_context(|| format!("invalid log level {:?}", config.log_level))?,
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(ferromq::run(config))?;
    Ok(())
}
