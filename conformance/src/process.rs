//! The broker binary as a child process, for tests that kill it (SIGKILL at a random point)
//! and restart it on the same data directory. The binary is `$FERROMQ_BIN`, or
//! `target/debug/ferromq` of this workspace (which `cargo test --workspace` builds for the CLI
//! tests; run `cargo build --bin ferromq` first when running this crate's tests alone).
//!
//! Each start listens on `127.0.0.1:0` for AMQP and MQTT and reads the real ports from the
//! "listening" log lines; the log is kept for assertions and failure messages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a start may take (recovery of a test-sized log included).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The broker binary.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FERROMQ_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("debug")
        .join("ferromq")
}

/// A running broker process.
pub struct BrokerProcess {
    child: Child,
    /// The AMQP port it logged.
    pub amqp_port: u16,
    /// The MQTT port it logged.
    pub mqtt_port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl BrokerProcess {
    /// Starts the broker on `data_dir`; `config` is the text of a TOML config file (may be
    /// empty). Panics with its log if it does not report both listeners in time.
    pub fn start(data_dir: &Path, config: &str) -> BrokerProcess {
        let bin = binary();
        assert!(
            bin.exists(),
            "broker binary {} not found: run `cargo build --bin ferromq` or set FERROMQ_BIN",
            bin.display()
        );
        std::fs::create_dir_all(data_dir).expect("data dir");
        let config_path = data_dir.with_extension("toml");
        std::fs::write(&config_path, config).expect("config file");
        let mut child = Command::new(bin)
            .args([
                "--mqtt-listen",
                "127.0.0.1:0",
                "--amqp-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(&config_path)
            .args(["--log-level", "info"])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("broker starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (amqp, mqtt) = {
                let l = log.lock().expect("log");
                (
                    port_in(&l, "listening for AMQP on "),
                    port_in(&l, "listening for MQTT on "),
                )
            };
            if let (Some(amqp_port), Some(mqtt_port)) = (amqp, mqtt) {
                return BrokerProcess {
                    child,
                    amqp_port,
                    mqtt_port,
                    log,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "broker exited ({status}) before listening:\n{}",
                    lines(&log)
                );
            }
            assert!(
                Instant::now() < deadline,
                "broker did not listen in time:\n{}",
                lines(&log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The AMQP URI for guest on vhost `/`.
    pub fn amqp_uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// Its log so far, one line per entry.
    pub fn log(&self) -> String {
        lines(&self.log)
    }

    /// SIGKILL: the process dies at once, wherever it is.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the process to exit; panics with its log otherwise.
    pub fn wait_exit(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "broker did not exit in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit (up to 30 s).
    pub fn stop_gracefully(self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.wait_exit(Duration::from_secs(30));
    }

    /// The child's process id (to signal it from another thread).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_in(lines: &[String], marker: &str) -> Option<u16> {
    lines.iter().find_map(|l| {
        let rest = l.split(marker).nth(1)?;
        let addr = rest.split_whitespace().next()?;
        addr.rsplit(':').next()?.parse().ok()
    })
}

fn lines(log: &Mutex<Vec<String>>) -> String {
    log.lock().map(|l| l.join("\n")).unwrap_or_default()
}

/// Total bytes of the files under `dir` (recursively).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A small PRNG (xorshift64*) so kill points vary between runs; the seed is printed by the
/// tests so a failing run can be repeated with `FERROMQ_TEST_SEED`.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `FERROMQ_TEST_SEED` or the clock.
    pub fn new() -> Rng {
        let seed = std::env::var("FERROMQ_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("durability test seed: FERROMQ_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        lo + x % (hi - lo).max(1)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}
