//! The segment log on disk: a torn or corrupted tail is detected, logged and skipped while the
//! broker serves the rest; and consuming a backlog several segments large gives the disk space
//! back.

use std::time::{Duration, Instant};

use conformance::process::{dir_size, BrokerProcess};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use super::support::{channel, drain, publish_confirmed, stop, STEP};

/// Small segments, and a small window of bodies in memory, so backlogs are read back from disk.
const SMALL_SEGMENTS: &str = "[store]\nsegment_bytes = 16384\nmemory_window = 50\n";

async fn declare(ch: &lapin::Channel, q: &str) {
    ch.queue_declare(
        q,
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("durable queue");
}

fn segments(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("messages"))
        .expect("messages dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn torn_and_corrupt_segment_tails_are_skipped_and_the_rest_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, SMALL_SEGMENTS);
    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("{i:04}-{}", "p".repeat(200)).into_bytes())
        .collect();
    {
        let (_conn, ch) = channel(&b).await;
        declare(&ch, "torn").await;
        publish_confirmed(&ch, "", "torn", &bodies).await;
    }
    b.kill();
    let files = segments(&data);
    assert!(files.len() >= 3, "several segments: {files:?}");
    // Flip bytes in the middle of the first segment, cut the last one mid-record.
    let first = &files[0];
    let mut bytes = std::fs::read(first).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0xff;
    }
    std::fs::write(first, &bytes).expect("write");
    let last = files
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).map(|m| m.len() > 100).unwrap_or(false))
        .expect("a non-empty segment");
    let len = std::fs::metadata(last).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open")
        .set_len(len - 7)
        .expect("cut");

    let b = BrokerProcess::start(&data, SMALL_SEGMENTS);
    let (_conn, ch) = channel(&b).await;
    let got: Vec<Vec<u8>> = drain(&ch, "torn")
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert!(got.len() < bodies.len(), "the damaged records are gone");
    assert!(
        got.len() > bodies.len() / 2,
        "the rest is served: {}",
        got.len()
    );
    assert!(got.iter().all(|g| bodies.contains(g)), "no garbage");
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    let log = b.log();
    assert!(
        log.contains("checksum mismatch") || log.contains("invalid record length"),
        "corruption logged:\n{log}"
    );
    assert!(log.contains("truncated record"), "torn tail logged:\n{log}");
    // And it keeps working.
    publish_confirmed(&ch, "", "torn", &[b"after".to_vec()]).await;
    assert_eq!(drain(&ch, "torn").await.len(), 1);
    stop(b);
}

#[tokio::test]
async fn consuming_a_multi_segment_backlog_gives_the_disk_space_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let b = BrokerProcess::start(&data, SMALL_SEGMENTS);
    let (_conn, ch) = channel(&b).await;
    declare(&ch, "backlog").await;
    let bodies: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("{i:05}{}", "b".repeat(1000)).into_bytes())
        .collect();
    publish_confirmed(&ch, "", "backlog", &bodies).await;
    let messages = data.join("messages");
    let full = dir_size(&messages);
    assert!(full > 1_000_000, "the backlog is on disk: {full} bytes");
    assert!(segments(&data).len() > 20, "over many segments");
    assert_eq!(drain(&ch, "backlog").await.len(), bodies.len());
    // Settlements are written by the persister after the acks: poll with a deadline.
    let deadline = Instant::now() + STEP;
    loop {
        let now = dir_size(&messages);
        if now < 64 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "disk not reclaimed: {now} of {full} bytes left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(b);
}
