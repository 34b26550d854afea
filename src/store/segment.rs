//! Segment files of the message log: `messages/00000000000000000001.seg`, numbered in the order
//! they were started. Each begins with an 8-byte magic and then holds records (`record`).
//!
//! `scan` reads one segment at recovery: records are handed on until the first one that is not
//! intact. What follows it cannot be trusted (a length field may be the corrupt part), so the
//! file is truncated there and the loss logged with the file and offset: a torn tail after a
//! crash in the middle of a write, or flipped bytes. The rest of the log is served.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::record::{self, Decoded};

/// The first bytes of every segment file (format version 1).
pub const MAGIC: &[u8; 8] = b"FMQSEG1\n";

/// Suffix of segment files.
const SUFFIX: &str = ".seg";

/// The path of segment `n` in `dir`.
pub fn path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}{SUFFIX}"))
}

/// The segments in `dir`, by number, oldest first. Other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(SUFFIX))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, entry.path()));
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

/// Creates segment `n` with its magic written; the directory is fsynced when `sync` so the new
/// file's name is durable too.
pub fn create(dir: &Path, n: u64, sync: bool) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path(dir, n))?;
    file.write_all(MAGIC)?;
    if sync {
        file.sync_data()?;
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Fsyncs a directory, making creations, renames and deletions in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Where a record sits in its segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Byte offset of the record's header.
    pub offset: u64,
    /// Bytes the record takes, header included.
    pub size: u32,
}

/// How a scanned segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Intact records read.
    pub records: u64,
    /// Bytes of the file kept (magic plus intact records).
    pub valid_len: u64,
    /// Set when the file held more than its intact records: why, and how many bytes were cut.
    pub truncated: Option<(&'static str, u64)>,
}

/// Reads segment `path`, handing each intact record (kind, payload, its offset and size in the
/// file) to `each`, and truncates
/// the file after the last intact one (logged). A file without the magic is kept aside under a
/// `.corrupt` name and reads as empty.
pub fn scan(path: &Path, mut each: impl FnMut(u8, &[u8], Location)) -> io::Result<Scanned> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
        let aside = path.with_extension("corrupt");
        tracing::error!(
            segment = %path.display(),
            "store: segment has no valid header; moved aside to {}",
            aside.display()
        );
        std::fs::rename(path, &aside)?;
        return Ok(Scanned {
            records: 0,
            valid_len: 0,
            truncated: Some(("missing segment header", buf.len() as u64)),
        });
    }
    let mut at = MAGIC.len();
    let mut records = 0;
    let truncated = loop {
        match record::decode(&buf[at..]) {
            Decoded::Record {
                kind,
                payload,
                size,
            } => {
                each(
                    kind,
                    payload,
                    Location {
                        offset: at as u64,
                        size: size as u32,
                    },
                );
                records += 1;
                at += size;
            }
            Decoded::End => break None,
            Decoded::Bad(why) => break Some((why, (buf.len() - at) as u64)),
        }
    };
    if let Some((why, cut)) = truncated {
        tracing::warn!(
            segment = %path.display(),
            offset = at,
            bytes = cut,
            "store: {why} at offset {at} of {}; dropping the {cut} bytes from there",
            path.display()
        );
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(at as u64)?;
        file.sync_all()?;
    }
    Ok(Scanned {
        records,
        valid_len: at as u64,
        truncated,
    })
}
