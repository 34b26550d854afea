//! Where the enqueue record of each live message sits on disk, so a queue that keeps only a
//! window of message bodies in memory can read the others back (`SegmentStore::read`).
//!
//! The persister adds a message's location once its record is written (after the batch's
//! write, so a reader never sees a location whose bytes are not in the file yet) and removes it
//! when the message is settled; recovery fills it from the scan. Readers keep a few segment
//! files open; the persister closes the handles of segments it deletes, so a deleted file's
//! space is not held by a cached handle.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::codec::Reader;
use super::persister::kind;
use super::record::{self, Decoded};
use super::segment::{self, Location};
use crate::broker::message::Message;

/// Open segment files kept for reading at most (older handles are closed first).
const MAX_OPEN: usize = 16;

/// Message id -> (segment, location of its enqueue record).
#[derive(Default)]
pub struct Index {
    locations: Mutex<HashMap<u64, (u64, Location)>>,
    files: Mutex<Vec<(u64, Arc<File>)>>,
}

impl Index {
    /// Records where message `id` was written.
    pub fn insert_all(&self, written: impl IntoIterator<Item = (u64, u64, Location)>) {
        let mut l = self.locations.lock();
        for (id, seg, loc) in written {
            l.insert(id, (seg, loc));
        }
    }

    /// Message `id` is settled.
    pub fn remove(&self, id: u64) {
        self.locations.lock().remove(&id);
    }

    /// Segment `n` was deleted: its handle, if cached, is closed.
    pub fn segment_deleted(&self, n: u64) {
        self.files.lock().retain(|(s, _)| *s != n);
    }

    /// True if the record of `id` is known to be written.
    pub fn contains(&self, id: u64) -> bool {
        self.locations.lock().contains_key(&id)
    }

    /// Reads message `id` back from segment files in `dir`; `Ok(None)` if its location is not
    /// known.
    pub fn read(&self, dir: &std::path::Path, id: u64) -> Result<Option<Message>, String> {
        let Some((seg, loc)) = self.locations.lock().get(&id).copied() else {
            return Ok(None);
        };
        let file = self.file(dir, seg).map_err(|e| e.to_string())?;
        let mut buf = vec![0; loc.size as usize];
        file.read_exact_at(&mut buf, loc.offset)
            .map_err(|e| e.to_string())?;
        let Decoded::Record { kind, payload, .. } = record::decode(&buf) else {
            return Err(format!(
                "bad record at offset {} of segment {seg}",
                loc.offset
            ));
        };
        if kind != kind::ENQUEUE {
            return Err(format!(
                "record at offset {} of segment {seg} is no enqueue",
                loc.offset
            ));
        }
        let mut r = Reader::new(payload);
        let stored_id = r.u64().map_err(|e| e.to_string())?;
        if stored_id != id {
            return Err(format!(
                "record at offset {} holds message {stored_id}, not {id}",
                loc.offset
            ));
        }
        r.string().map_err(|e| e.to_string())?;
        r.message().map(Some).map_err(|e| e.to_string())
    }

    fn file(&self, dir: &std::path::Path, seg: u64) -> std::io::Result<Arc<File>> {
        let mut files = self.files.lock();
        if let Some((_, f)) = files.iter().find(|(s, _)| *s == seg) {
            return Ok(Arc::clone(f));
        }
        let path: PathBuf = segment::path(dir, seg);
        let f = Arc::new(File::open(path)?);
        if files.len() >= MAX_OPEN {
            files.remove(0);
        }
        files.push((seg, Arc::clone(&f)));
        Ok(f)
    }
}
