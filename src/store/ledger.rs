//! Which segments may be deleted. The persister (and recovery, replaying the log) tells the
//! ledger where each message's enqueue record went and where records referring to it (settle,
//! delivered) went; the ledger answers which segments no longer hold anything needed.
//!
//! A segment can go when (1) every message enqueued in it is settled and (2) every older
//! segment its settle / delivered records refer to is gone already. Rule 2 matters: a settle
//! record deleted while the enqueue it cancels survives would bring the message back at the
//! next recovery. So deletion proceeds in rounds — delete, fsync the directory, then look
//! again — and one long-lived message pins its own segment plus the few segments that settled
//! its neighbours, not the whole log.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Per-segment bookkeeping and the location of every live message.
#[derive(Debug, Default)]
pub struct Ledger {
    segments: BTreeMap<u64, Segment>,
    /// Live (unsettled) message id -> the segment holding its enqueue record.
    location: HashMap<u64, u64>,
}

#[derive(Debug, Default)]
struct Segment {
    /// Unsettled messages enqueued here.
    live: u64,
    /// Older segments that records here refer to.
    deps: BTreeSet<u64>,
}

impl Ledger {
    /// A new segment `n` was started (or found at recovery).
    pub fn add_segment(&mut self, n: u64) {
        self.segments.entry(n).or_default();
    }

    /// Message `id` was enqueued in segment `seg`.
    pub fn enqueued(&mut self, seg: u64, id: u64) {
        if let Some(s) = self.segments.get_mut(&seg) {
            s.live += 1;
            self.location.insert(id, seg);
        }
    }

    /// A record about message `id` (`settle`: its settlement; else its first delivery) goes
    /// to segment `seg`. False if the message is not live: the record is not needed.
    pub fn referenced(&mut self, seg: u64, id: u64, settle: bool) -> bool {
        let Some(&home) = self.location.get(&id) else {
            return false;
        };
        if settle {
            self.location.remove(&id);
            if let Some(s) = self.segments.get_mut(&home) {
                s.live = s.live.saturating_sub(1);
            }
        }
        if home != seg {
            if let Some(s) = self.segments.get_mut(&seg) {
                s.deps.insert(home);
            }
        }
        true
    }

    /// True if message `id` is live.
    pub fn is_live(&self, id: u64) -> bool {
        self.location.contains_key(&id)
    }

    /// The segments that may be deleted now (never `current`, the one being written).
    pub fn reclaimable(&self, current: u64) -> Vec<u64> {
        self.segments
            .iter()
            .filter(|(n, s)| **n != current && s.live == 0 && s.deps.is_empty())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Segments `gone` were deleted (and the deletion made durable).
    pub fn removed(&mut self, gone: &[u64]) {
        for n in gone {
            self.segments.remove(n);
        }
        for s in self.segments.values_mut() {
            for n in gone {
                s.deps.remove(n);
            }
        }
    }

    /// Segments tracked.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Unsettled messages.
    pub fn live_messages(&self) -> usize {
        self.location.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_segment_goes_only_after_what_it_settles() {
        let mut l = Ledger::default();
        l.add_segment(1);
        l.enqueued(1, 10);
        l.enqueued(1, 11);
        l.add_segment(2);
        l.enqueued(2, 20);
        assert!(l.referenced(2, 10, true));
        assert!(l.referenced(2, 20, true));
        l.add_segment(3);
        // Segment 2 is fully settled but settles message 10 of segment 1, where 11 lives.
        assert_eq!(l.reclaimable(3), Vec::<u64>::new());
        assert!(l.referenced(3, 11, true));
        l.add_segment(4);
        assert_eq!(l.reclaimable(4), vec![1]);
        l.removed(&[1]);
        assert_eq!(l.reclaimable(4), vec![2, 3]);
    }

    #[test]
    fn unknown_ids_need_no_record_and_current_is_kept() {
        let mut l = Ledger::default();
        l.add_segment(1);
        assert!(!l.referenced(1, 99, true));
        l.enqueued(1, 1);
        assert!(l.referenced(1, 1, true));
        assert_eq!(l.reclaimable(1), Vec::<u64>::new());
        assert_eq!(l.reclaimable(2), vec![1]);
        assert_eq!(l.live_messages(), 0);
    }
}
