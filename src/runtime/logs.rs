//! Container logs: `log.jsonl`, one JSON object per line as Docker's
//! json-file driver writes them (`log`, `stream`, `time`), size-bounded with
//! one rotated file; and reading them back with `--tail`, `--since` and
//! timestamps, or following what is appended.
//!
//! Owns the log files; the shim writes, the CLI reads.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{now_rfc3339, parse_rfc3339};

/// Size at which the log rotates to `log.jsonl.1`.
pub const MAX_LOG_BYTES: u64 = 10 * 1024 * 1024;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries to a container's log.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
    /// Partial lines waiting for their newline, per stream.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, max: u64) -> std::io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max,
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// Adds raw output of a stream (0 stdout, 1 stderr); complete lines are written.
    pub fn push(&mut self, stream: usize, data: &[u8]) -> std::io::Result<()> {
        let idx = stream.min(1);
        self.pending[idx].extend_from_slice(data);
        while let Some(pos) = self.pending[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending[idx].drain(..=pos).collect();
            self.write_line(idx, &line)?;
        }
        Ok(())
    }

    /// Writes what is left of partial lines.
    pub fn flush(&mut self) -> std::io::Result<()> {
        for idx in 0..2 {
            if !self.pending[idx].is_empty() {
                let line = std::mem::take(&mut self.pending[idx]);
                self.write_line(idx, &line)?;
            }
        }
        Ok(())
    }

    fn write_line(&mut self, idx: usize, line: &[u8]) -> std::io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).to_string(),
            stream: if idx == 0 { "stdout" } else { "stderr" }.to_string(),
            time: now_rfc3339(),
        };
        let mut text = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
        text.push('\n');
        if self.size + text.len() as u64 > self.max && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let old = self.path.with_extension("jsonl.1");
        std::fs::rename(&self.path, &old)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// How to read logs back.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub tail: Option<usize>,
    /// Only entries at or after this time (seconds since the epoch).
    pub since: Option<i64>,
    /// Only entries before this time (seconds since the epoch).
    pub until: Option<i64>,
    pub timestamps: bool,
}

/// The entries of one log file (none when it is missing).
pub fn entries_of(path: &Path) -> Vec<Entry> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Every entry (rotated file first), filtered as asked.
pub fn read(path: &Path, opts: &ReadOptions) -> Vec<Entry> {
    let mut all = entries_of(&path.with_extension("jsonl.1"));
    all.extend(entries_of(path));
    select(all, opts)
}

/// The entries `opts` keeps (`--since`, `--until`, then `--tail`).
pub fn select(mut all: Vec<Entry>, opts: &ReadOptions) -> Vec<Entry> {
    if let Some(since) = opts.since {
        all.retain(|e| parse_rfc3339(&e.time).is_some_and(|(s, _)| s >= since));
    }
    if let Some(until) = opts.until {
        all.retain(|e| parse_rfc3339(&e.time).is_some_and(|(s, _)| s < until));
    }
    if let Some(n) = opts.tail {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    all
}

/// Reads a log incrementally: each poll returns only the entries appended
/// since the last, following the file across a rotation.
pub struct Follower {
    path: PathBuf,
    /// Inode of the file being read (0 while there is none).
    ino: u64,
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the beginning of the current file (not the rotated one).
    pub fn from_start(path: &Path) -> Follower {
        Follower {
            path: path.to_path_buf(),
            ino: inode_of(path),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Entries appended since the last poll.
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        let ino = inode_of(&self.path);
        if ino != self.ino {
            // Rotated: the rest of the file read so far is now `.1`.
            let rotated = self.path.with_extension("jsonl.1");
            if self.ino != 0 && inode_of(&rotated) == self.ino {
                self.read_rest(&rotated, &mut out);
            }
            self.ino = ino;
            self.offset = 0;
            self.partial.clear();
        }
        let path = self.path.clone();
        self.read_rest(&path, &mut out);
        out
    }

    fn read_rest(&mut self, path: &Path, out: &mut Vec<Entry>) {
        let Ok(mut f) = File::open(path) else {
            return;
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            return;
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        out.extend(
            complete
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice(l).ok()),
        );
    }
}

fn inode_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// The text of an entry as `logs` prints it.
pub fn render(e: &Entry, timestamps: bool) -> String {
    if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    }
}

/// Parses `--since`: RFC 3339, a Unix timestamp, or a duration ago (`10m`, `1h`).
pub fn parse_since(s: &str, now: i64) -> Option<i64> {
    if let Some((secs, _)) = parse_rfc3339(s) {
        return Some(secs);
    }
    if let Ok(n) = s.parse::<f64>() {
        return Some(n as i64);
    }
    crate::spec::units::parse_duration(s).map(|ns| now - (ns / 1_000_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-logs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d.join("log.jsonl")
    }

    #[test]
    fn lines_are_split_per_stream_and_partials_flushed() {
        let p = temp("split");
        let mut w = LogWriter::open(&p, MAX_LOG_BYTES).unwrap_or_else(|e| panic!("{e}"));
        w.push(0, b"hel").unwrap_or_default();
        w.push(1, b"err\n").unwrap_or_default();
        w.push(0, b"lo\nworld").unwrap_or_default();
        w.flush().unwrap_or_default();
        let e = read(&p, &ReadOptions::default());
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stderr", "err\n"),
                ("stdout", "hello\n"),
                ("stdout", "world")
            ]
        );
        let tail = read(
            &p,
            &ReadOptions {
                tail: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].log, "world");
        assert!(render(&tail[0], true).ends_with("Z world"));
    }

    #[test]
    fn rotation_keeps_the_newest_lines() {
        let p = temp("rotate");
        let mut w = LogWriter::open(&p, 300).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..20 {
            w.push(0, format!("line {i}\n").as_bytes())
                .unwrap_or_default();
        }
        assert!(std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) <= 300);
        let e = read(&p, &ReadOptions::default());
        assert_eq!(e.last().map(|e| e.log.as_str()), Some("line 19\n"));
        assert!(e.len() < 20, "older lines were rotated away");
    }

    #[test]
    fn follower_sees_each_appended_entry_once_across_rotation() {
        let p = temp("follow");
        let mut w = LogWriter::open(&p, 300).unwrap_or_else(|e| panic!("{e}"));
        let mut f = Follower::from_start(&p);
        let mut seen = Vec::new();
        for i in 0..12 {
            w.push(0, format!("line {i}\n").as_bytes())
                .unwrap_or_default();
            w.push(1, b"half").unwrap_or_default();
            seen.extend(f.poll().into_iter().map(|e| e.log));
            w.flush().unwrap_or_default();
        }
        seen.extend(f.poll().into_iter().map(|e| e.log));
        assert!(p.with_extension("jsonl.1").exists(), "the log rotated");
        let want: Vec<String> = (0..12)
            .flat_map(|i| [format!("line {i}\n"), "half".to_string()])
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn since_forms() {
        assert_eq!(parse_since("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_since("10m", 1000), Some(400));
        assert_eq!(parse_since("1970-01-01T00:01:00Z", 0), Some(60));
        assert_eq!(parse_since("soon", 0), None);
    }
}
