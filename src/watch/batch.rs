//! Debouncing: file events are gathered until the tree has been quiet for
//! a moment (a burst of saves — an editor's, a `git checkout`'s — makes
//! one batch), or until a batch has waited long enough under a steady
//! stream. Pure: the caller passes the time.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the tree must be quiet before a batch goes.
pub const QUIET: Duration = Duration::from_millis(100);
/// The longest a change waits under a steady stream of events.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// Changed paths waiting to be acted on.
#[derive(Debug, Default)]
pub struct Batcher {
    paths: BTreeSet<PathBuf>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Batcher {
    /// Records a changed path seen at `now`.
    pub fn add(&mut self, path: PathBuf, now: Instant) {
        self.paths.insert(path);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// The batch, once the tree has been quiet for `QUIET` (or the first
    /// change has waited `MAX_WAIT`); the batcher is then empty again.
    pub fn take_ready(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        let (first, last) = (self.first?, self.last?);
        if now.duration_since(last) < QUIET && now.duration_since(first) < MAX_WAIT {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(std::mem::take(&mut self.paths).into_iter().collect())
    }

    /// How long to wait for the next event before checking again.
    pub fn timeout(&self, now: Instant) -> Duration {
        match self.last {
            None => Duration::from_millis(500),
            Some(last) => QUIET
                .saturating_sub(now.duration_since(last))
                .max(Duration::from_millis(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_saves_makes_one_batch() {
        let t0 = Instant::now();
        let mut b = Batcher::default();
        // 50 saves of two files within 100 ms.
        for i in 0..50u64 {
            let at = t0 + Duration::from_millis(i * 2);
            b.add(PathBuf::from(format!("/w/f{}", i % 2)), at);
            assert!(b.take_ready(at).is_none(), "nothing goes while saves come");
        }
        let end = t0 + Duration::from_millis(98);
        assert!(b.take_ready(end + Duration::from_millis(50)).is_none());
        let batch = b.take_ready(end + QUIET).expect("one batch once quiet");
        assert_eq!(batch, [PathBuf::from("/w/f0"), PathBuf::from("/w/f1")]);
        assert!(b.take_ready(end + QUIET * 3).is_none(), "and only one");
    }

    #[test]
    fn a_steady_stream_still_flushes() {
        let t0 = Instant::now();
        let mut b = Batcher::default();
        let mut flushed = 0;
        for i in 0..300u64 {
            let at = t0 + Duration::from_millis(i * 10);
            b.add(PathBuf::from("/w/log"), at);
            if b.take_ready(at).is_some() {
                flushed += 1;
            }
        }
        assert!(flushed >= 1, "a change waits at most MAX_WAIT");
    }
}
