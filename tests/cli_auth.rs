//! The `ferromq user / vhost / permissions` subcommands against a running broker: users are
//! added, listed, re-passworded and deleted on a temp data dir, and a broker started on that
//! dir sees each change at the next login without a restart (MQTT CONNACK over a real socket).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferromq");

fn admin(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("FERROMQ_CONFIG")
        .output()
        .expect("binary runs")
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = admin(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the broker on `data` with MQTT on 127.0.0.1:0; returns it and the MQTT port.
fn start(data: &Path) -> (Child, u16) {
    start_with(data, &[])
}

/// `start` with extra arguments.
fn start_with(data: &Path, extra: &[&std::ffi::OsStr]) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["--mqtt-listen", "127.0.0.1:0", "--amqp-listen", "off"])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("FERROMQ_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("broker starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening for MQTT on ").nth(1) {
                let port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .flatten()
        .expect("listening line with the port");
    (child, port)
}

/// The SUBACK return code an anonymous MQTT 3.1.1 client gets for `filter` (QoS 0).
fn suback(port: u16, filter: &str) -> u8 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[
        0x10, 0x0e, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b's', b'h',
    ])
    .unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).expect("CONNACK");
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
    let mut sub = vec![0x82, (2 + 2 + filter.len() + 1) as u8, 0, 1];
    sub.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    sub.extend_from_slice(filter.as_bytes());
    sub.push(0);
    s.write_all(&sub).unwrap();
    let mut suback = [0u8; 5];
    s.read_exact(&mut suback).expect("SUBACK");
    assert_eq!(&suback[..4], &[0x90, 0x03, 0, 1]);
    suback[4]
}

/// The CONNACK return code of a hand-encoded MQTT 3.1.1 CONNECT with credentials.
fn connack(port: u16, user: &str, password: &str) -> u8 {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xC2, 0x00, 0x1e];
    for field in ["cli-auth", user, password] {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field.as_bytes());
    }
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&packet).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).expect("CONNACK");
    assert_eq!(&ack[..2], &[0x20, 0x02]);
    ack[3]
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(std::time::Instant::now() < deadline, "broker did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn user_commands_take_effect_on_a_running_broker() {
    let data = std::env::temp_dir().join(format!("ferromq-cli-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    ok(&data, &["user", "add", "alice", "first"]);
    // A fresh data dir keeps the built-in guest.
    let users = ok(&data, &["user", "list"]);
    assert_eq!(users.lines().collect::<Vec<_>>(), ["guest", "alice"]);
    let out = admin(&data, &["user", "add", "alice", "again"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // The file holds argon2id hashes, not the password.
    let file = std::fs::read_to_string(data.join("auth.toml")).unwrap();
    assert!(
        file.contains("$argon2id$") && !file.contains("first"),
        "{file}"
    );

    let (broker, port) = start(&data);
    // No permissions on `/` yet: not authorized (5).
    assert_eq!(connack(port, "alice", "first"), 5);
    ok(
        &data,
        &[
            "permissions",
            "set",
            "alice",
            "--vhost",
            "/",
            ".*",
            ".*",
            ".*",
        ],
    );
    assert_eq!(connack(port, "alice", "first"), 0);
    ok(&data, &["user", "passwd", "alice", "second"]);
    assert_eq!(connack(port, "alice", "first"), 4, "old password refused");
    assert_eq!(connack(port, "alice", "second"), 0, "new password works");
    ok(&data, &["user", "delete", "alice"]);
    assert_eq!(connack(port, "alice", "second"), 4);
    assert_eq!(connack(port, "guest", "guest"), 0);
    stop(broker);

    assert_eq!(ok(&data, &["user", "list"]).trim(), "guest");
    assert!(ok(&data, &["permissions", "list"]).starts_with("guest\t/\t.*"));
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn vhost_and_permission_commands() {
    let data = std::env::temp_dir().join(format!("ferromq-cli-vhost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    ok(&data, &["vhost", "add", "dev"]);
    assert_eq!(ok(&data, &["vhost", "list"]), "/\ndev\n");
    ok(&data, &["user", "add", "bob", "pw"]);
    ok(
        &data,
        &[
            "permissions",
            "set",
            "bob",
            "--vhost",
            "dev",
            "^b-",
            "^b-",
            "",
        ],
    );
    assert_eq!(
        ok(&data, &["permissions", "list", "--vhost", "dev"]),
        "bob\tdev\t^b-\t^b-\t\n"
    );
    let bad = admin(&data, &["permissions", "set", "bob", "(", ".*", ".*"]);
    assert!(!bad.status.success(), "invalid regex refused");
    let missing = admin(
        &data,
        &[
            "permissions",
            "set",
            "bob",
            "--vhost",
            "nope",
            ".*",
            ".*",
            ".*",
        ],
    );
    assert!(!missing.status.success(), "unknown vhost refused");
    assert!(!admin(&data, &["vhost", "delete", "/"]).status.success());
    ok(&data, &["vhost", "delete", "dev"]);
    assert_eq!(ok(&data, &["vhost", "list"]), "/\n");
    // Deleting the vhost removed bob's permissions on it.
    assert!(!ok(&data, &["permissions", "list"]).contains("bob"));
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn sighup_reloads_the_acl_file() {
    let data = std::env::temp_dir().join(format!("ferromq-cli-hup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let acl = data.join("acl");
    std::fs::write(&acl, "topic read a/#\n").unwrap();
    let config = data.join("ferromq.toml");
    std::fs::write(
        &config,
        format!("[mqtt]\nacl_file = {:?}\n", acl.display().to_string()),
    )
    .unwrap();
    let (broker, port) = start_with(&data, &["--config".as_ref(), config.as_os_str()]);
    assert_eq!(suback(port, "a/x"), 0);
    assert_eq!(suback(port, "b/x"), 0x80);
    std::fs::write(&acl, "topic read b/#\n").unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &broker.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The reload happens on the broker's signal task: poll, with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while suback(port, "b/x") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "ACL not reloaded on SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(suback(port, "a/x"), 0x80);
    stop(broker);
    std::fs::remove_dir_all(&data).ok();
}
