//! The segment store against real files in a temporary directory: recovery, torn and corrupt
//! tails, reclamation, group commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;

use super::persister::kind;
use super::segment;
use super::{MessageStore, SegmentStore, StoreConfig, StoreId};
use crate::broker::message::{Message, Origin, Properties};

fn message(body: &str) -> Arc<Message> {
    Arc::new(Message {
        exchange: "".into(),
        topic: "q".into(),
        body: Bytes::copy_from_slice(body.as_bytes()),
        qos: 1,
        retain: false,
        expires_at: None,
        properties: Properties::default(),
        origin: Origin::default(),
    })
}

fn config(segment_bytes: u64) -> StoreConfig {
    StoreConfig {
        segment_bytes,
        // Small, so recovery leaves most bodies on disk and `bodies` reads them back.
        memory_window: 3,
        ..StoreConfig::default()
    }
}

/// The body of a recovered message, read back from the log if recovery did not load it.
fn body_of(store: &SegmentStore, m: &super::RecoveredMessage) -> String {
    let message = m
        .message
        .clone()
        .or_else(|| store.read(m.id))
        .expect("body in memory or readable");
    String::from_utf8_lossy(&message.body).into_owned()
}

fn bodies(store: &SegmentStore, queue: &str) -> Vec<String> {
    store
        .take_recovered(queue)
        .iter()
        .map(|m| body_of(store, m))
        .collect()
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    segment::list(dir)
        .expect("list")
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn a_settle_now_is_committed_without_a_later_enqueue_and_answers_its_waiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("open");
        let a = store.enqueue("q", &message("a"), None);
        store.enqueue("q", &message("b"), None);
        store.flush();
        let (tx, rx) = mpsc::channel();
        store.settle_now(
            "q",
            a,
            Some(Box::new(move |written| {
                let _ = tx.send(written);
            })),
        );
        // A plain settle would wait for the lazy delay or a later enqueue; this one is
        // committed on its own, and its waiter hears of it.
        let written = rx.recv_timeout(Duration::from_secs(5)).expect("answered");
        assert!(written);
    }
    let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("reopen");
    assert_eq!(bodies(&store, "q"), vec!["b"]);
}

#[test]
fn unsettled_messages_come_back_in_order_with_their_redelivered_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("open");
        let a = store.enqueue("q", &message("a"), None);
        let b = store.enqueue("q", &message("b"), None);
        store.enqueue("q", &message("c"), None);
        store.enqueue("r", &message("r1"), None);
        store.delivered(a);
        store.settle("q", b);
        store.flush();
    }
    let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("reopen");
    let q = store.take_recovered("q");
    let flags: Vec<(String, bool)> = q
        .iter()
        .map(|m| (body_of(&store, m), m.redelivered))
        .collect();
    assert_eq!(flags, vec![("a".into(), true), ("c".into(), false)]);
    assert_eq!(bodies(&store, "r"), vec!["r1"]);
    assert!(store.take_recovered("q").is_empty(), "taken once");
    // New ids never collide with recovered ones.
    let next = store.enqueue("q", &message("d"), None);
    assert!(q.iter().all(|m| m.id < next));
}

#[test]
fn a_torn_tail_is_truncated_and_the_rest_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("open");
        for i in 0..10 {
            store.enqueue("q", &message(&format!("m{i}")), None);
        }
        store.flush();
    }
    let files = segments(dir.path());
    let last = files.last().expect("a segment");
    let len = std::fs::metadata(last).expect("meta").len();
    // Cut into the last record, as a crash in the middle of a write leaves it.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    f.set_len(len - 3).expect("truncate");
    drop(f);
    {
        let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("reopen");
        let got = bodies(&store, "q");
        assert_eq!(got, (0..9).map(|i| format!("m{i}")).collect::<Vec<_>>());
        assert!(
            std::fs::metadata(last).expect("meta").len() < len - 3,
            "tail cut"
        );
        // Serving goes on.
        for m in store.take_recovered("q") {
            store.settle("q", m.id);
        }
        store.enqueue("q", &message("after"), None);
        store.flush();
    }
    let store = SegmentStore::open(dir.path(), &config(1 << 20)).expect("reopen");
    let got = bodies(&store, "q");
    assert_eq!(got.len(), 10);
    assert_eq!(got.last().map(String::as_str), Some("after"));
}

#[test]
fn flipped_bytes_lose_only_the_rest_of_their_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // About ten messages per segment.
        let store = SegmentStore::open(dir.path(), &config(1000)).expect("open");
        for i in 0..40 {
            store.enqueue("q", &message(&format!("{i:03}{}", "x".repeat(60))), None);
        }
        store.flush();
    }
    let files = segments(dir.path());
    assert!(files.len() >= 4, "several segments: {}", files.len());
    let victim = &files[1];
    let mut bytes = std::fs::read(victim).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(victim, &bytes).expect("write");
    let mut before_victim = 0;
    segment::scan(&files[0], |k, _, _| {
        before_victim += u64::from(k == kind::ENQUEUE)
    })
    .expect("scan");
    let store = SegmentStore::open(dir.path(), &config(1000)).expect("reopen");
    let got = bodies(&store, "q");
    assert!(
        got.len() < 40,
        "the damaged record and its followers in segment 2 are gone"
    );
    assert!(
        got.len() as u64 > before_victim,
        "later segments are served"
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert_eq!(got.last().map(|s| &s[..3]), Some("039"));
}

#[test]
fn settled_segments_are_deleted_and_the_disk_space_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SegmentStore::open(dir.path(), &config(4096)).expect("open");
    let body = "b".repeat(1000);
    let ids: Vec<StoreId> = (0..200)
        .map(|_| store.enqueue("q", &message(&body), None))
        .collect();
    store.flush();
    let full = segments(dir.path()).len();
    assert!(full >= 40, "a backlog over many segments: {full}");
    // One message stays: only its own segment (and what settled its neighbours) remains.
    for id in &ids[..199] {
        store.settle("q", *id);
    }
    store.flush();
    let pinned = segments(dir.path()).len();
    assert!(pinned <= 4, "{pinned} segments left for one live message");
    store.settle("q", ids[199]);
    // A record in a new segment: the one holding the last settle can go too.
    let extra = store.enqueue("q", &message(&body), None);
    for _ in 0..5 {
        let id = store.enqueue("q", &message(&body), None);
        store.settle("q", id);
    }
    store.settle("q", extra);
    store.flush();
    let left = segments(dir.path()).len();
    assert!(
        left <= 2,
        "{left} segments left after everything was settled"
    );
    drop(store);
    let store = SegmentStore::open(dir.path(), &config(4096)).expect("reopen");
    assert!(store.take_recovered("q").is_empty());
}

#[test]
fn completions_come_after_the_write_and_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SegmentStore::open(dir.path(), &config(64 << 20)).expect("open");
    let n = 2000;
    let ok = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            let ok = Arc::clone(&ok);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..n / 4 {
                    let ok = Arc::clone(&ok);
                    let tx = tx.clone();
                    store.enqueue(
                        "q",
                        &message(&format!("{t}-{i}")),
                        Some(Box::new(move |written| {
                            if written {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = tx.send(());
                        })),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("publisher thread");
    }
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("completion");
    }
    assert_eq!(ok.load(Ordering::Relaxed), n);
    // Every completed record is in the file already.
    let mut on_disk = 0;
    for path in segments(dir.path()) {
        segment::scan(&path, |k, _, _| on_disk += u64::from(k == kind::ENQUEUE)).expect("scan");
    }
    assert_eq!(on_disk, n);
    let fsyncs = store.fsyncs();
    assert!(
        fsyncs < n / 4,
        "group commit: {fsyncs} fsyncs for {n} records"
    );
}

#[test]
fn bodies_are_read_back_by_id_until_settled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SegmentStore::open(dir.path(), &config(2048)).expect("open");
    let ids: Vec<StoreId> = (0..50)
        .map(|i| {
            store.enqueue(
                "q",
                &message(&format!("body-{i}-{}", "y".repeat(100))),
                None,
            )
        })
        .collect();
    // Read before the persister wrote it: the read waits for it.
    let last = store.read(ids[49]).expect("readable");
    assert!(last.body.starts_with(b"body-49-"));
    for (i, id) in ids.iter().enumerate() {
        let m = store.read(*id).expect("readable");
        assert!(m.body.starts_with(format!("body-{i}-").as_bytes()));
    }
    store.settle("q", ids[0]);
    store.flush();
    assert!(store.read(ids[0]).is_none(), "settled messages are gone");
}
