//! The `ferromq` binary: command line + config -> tracing -> `ferromq::run`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ferromq::config::{Config, Listen, Overrides};

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
