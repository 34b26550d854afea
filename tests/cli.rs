//! The `ferromq` binary as users run it: flags, environment, config file, the "listening" log
//! line with the real port, and graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferromq");

/// Starts the binary and returns it with the MQTT port it logged (if any) and its log lines.
fn start(cmd: &mut Command) -> (Child, Option<u16>, Vec<String>) {
    let mut child = cmd
        .env_remove("FERROMQ_MQTT_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let mut port = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = line.contains("listening for MQTT on") || line.contains("not implemented");
        if let Some(rest) = line.split("listening for MQTT on ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
        }
        lines.push(line);
        if done && port.is_some() {
            break;
        }
        if lines.len() > 3 {
            break;
        }
    }
    (child, port, lines)
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    // Sent with the kill command, as an operator would.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "broker did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn port_zero_logs_the_real_port_and_sigterm_stops_cleanly() {
    let data = tempdir("port0");
    let (child, port, lines) = start(
        Command::new(BIN)
            .args([
                "--mqtt-listen",
                "127.0.0.1:0",
                "--amqp-listen",
                "off",
                "--data-dir",
            ])
            .arg(&data),
    );
    let port = port.unwrap_or_else(|| panic!("no listening line in {lines:?}"));
    assert_ne!(port, 0);
    // A real MQTT 3.1.1 CONNECT gets CONNACK on the logged port.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(&[
        0x10, 0x0e, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'c', b'l',
    ])
    .unwrap();
    let mut ack = [0u8; 4];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
    let status = stop(child);
    assert!(status.success(), "graceful exit, got {status:?}");
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn cli_beats_env_beats_file() {
    let data = tempdir("precedence");
    let file = data.join("ferromq.toml");
    // 192.0.2.1 (TEST-NET-1) is never a local address, so binding what the file says fails and
    // the broker exits: staying up proves a higher-precedence source was used.
    // The data dir comes from the file too (no source overrides it): nothing lands in the
    // working directory.
    std::fs::write(
        &file,
        format!(
            "mqtt_listen = \"192.0.2.1:1883\"\namqp_listen = \"off\"\ndata_dir = {:?}\n",
            data.join("data")
        ),
    )
    .unwrap();
    // The environment says off, the CLI says 127.0.0.1:0: the CLI wins.
    let (child, port, lines) = start(
        Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .args(["--mqtt-listen", "127.0.0.1:0"])
            .env("FERROMQ_MQTT_LISTEN", "off"),
    );
    assert!(port.is_some(), "CLI address used: {lines:?}");
    assert!(stop(child).success());
    // Without the flag the environment wins over the file: MQTT off, so no listening line.
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .env("FERROMQ_MQTT_LISTEN", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // no event marks "did not bind"; give it time
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running with MQTT off"
    );
    let status = stop(child);
    assert!(status.success());
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn bad_listen_value_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["--mqtt-listen", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("want HOST:PORT or off"), "{err}");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ferromq-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tls_listener_without_certificate_or_with_a_bad_mode_is_a_clear_error() {
    let data = tempdir("tls-missing");
    let out = Command::new(BIN)
        .args(["--mqtt-listen", "off", "--amqp-listen", "off"])
        .args(["--mqtts-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("FERROMQ_TLS_CERT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(all.contains("--tls-cert is not set"), "{all}");
    let out = Command::new(BIN)
        .args(["--tls-client-cert", "sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none, optional or required"), "{err}");
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn tls_listener_with_a_key_that_does_not_load_names_the_file() {
    let data = tempdir("tls-badkey");
    let key = data.join("broken.key");
    std::fs::write(&key, "not a key").unwrap();
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/certs");
    let out = Command::new(BIN)
        .args(["--mqtt-listen", "off", "--amqp-listen", "off"])
        .args(["--amqps-listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(format!("{certs}/server.pem"))
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        all.contains("cannot load private key from") && all.contains("broken.key"),
        "{all}"
    );
    std::fs::remove_dir_all(&data).ok();
}
