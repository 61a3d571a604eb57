//! The event journal: what happened to containers (create, start, die,
//! kill, stop, pause, unpause, destroy), as Docker's daemon reports it on
//! `docker events`. With no daemon, the process that makes a change appends
//! one JSON line to `<run>/events.jsonl`; readers follow the file.
//!
//! Owns the journal's format, appending and reading; never decides when an
//! event happens (the runtime and the shim call `record`).

use std::collections::BTreeMap;
use std::io::{BufRead, Seek, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::store::Store;

/// The journal is renamed to `events.jsonl.1` past this size, so it stays small.
const MAX_JOURNAL_BYTES: u64 = 4 << 20;

/// One event, as one line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
    /// `container`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "id")]
    pub id: String,
    /// Name, image, labels, and e.g. `exitCode` or `signal`.
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// Seconds and nanoseconds of the event's time.
    pub fn time(&self) -> (i64, u32) {
        (
            (self.time_nano / 1_000_000_000) as i64,
            (self.time_nano % 1_000_000_000) as u32,
        )
    }
}

/// Where the journal lives.
pub fn journal_path(store: &Store) -> PathBuf {
    store.run.join("events.jsonl")
}

/// Appends `action` for container `id`, with its name, image and labels
/// (read from its record) and `extra` attributes. Best effort: an event
/// that cannot be written is logged, never an error for the change it
/// reports.
pub fn record(store: &Store, id: &str, action: &str, extra: &[(&str, String)]) {
    match store
        .read_json::<super::spec::ContainerConfig>(&store.container_dir(id).join("berth.json"))
    {
        Ok(cfg) => record_for(store, &cfg, action, extra),
        Err(_) => write(store, id, action, BTreeMap::new(), extra),
    }
}

/// `record` for a caller that has the container's record at hand (the
/// shim, `create`, `stop`): nothing is read.
pub fn record_for(
    store: &Store,
    cfg: &super::spec::ContainerConfig,
    action: &str,
    extra: &[(&str, String)],
) {
    let mut attributes = cfg.labels.clone();
    attributes.insert("name".to_string(), cfg.name.clone());
    if let Some(image) = &cfg.image {
        attributes.insert("image".to_string(), image.clone());
    }
    write(store, &cfg.id, action, attributes, extra);
}

fn write(
    store: &Store,
    id: &str,
    action: &str,
    mut attributes: BTreeMap<String, String>,
    extra: &[(&str, String)],
) {
    for (k, v) in extra {
        attributes.insert(k.to_string(), v.clone());
    }
    let event = Event {
        time_nano: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0),
        kind: "container".into(),
        action: action.into(),
        id: id.into(),
        attributes,
    };
    if let Err(e) = append(store, &event) {
        tracing::warn!("recording event {action} of {id}: {e}");
    }
}

/// Where a follower starts to see only what happens from now on.
pub fn end_offset(store: &Store) -> u64 {
    std::fs::metadata(journal_path(store))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn append(store: &Store, event: &Event) -> std::io::Result<()> {
    let path = journal_path(store);
    std::fs::create_dir_all(&store.run)?;
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_JOURNAL_BYTES) {
        let _ = std::fs::rename(&path, path.with_extension("jsonl.1"));
    }
    let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // One write of one line with O_APPEND: concurrent writers never interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?
        .write_all(&line)
}

/// Reads the journal from byte `offset`: the whole events found and the
/// offset after the last whole line. A line torn by a crash is skipped.
pub fn read_from(store: &Store, offset: u64) -> (Vec<Event>, u64) {
    let path = journal_path(store);
    let Ok(mut file) = std::fs::File::open(&path) else {
        return (Vec::new(), 0);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // The journal was rotated: start over in the new one.
    let offset = if offset > len { 0 } else { offset };
    if file.seek(std::io::SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut reader = std::io::BufReader::new(file);
    let mut events = Vec::new();
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                pos += n as u64;
                if let Ok(e) = serde_json::from_str::<Event>(line.trim_end()) {
                    events.push(e);
                }
            }
        }
    }
    (events, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_back_in_order_and_resume_at_the_offset() {
        let store = crate::runtime::store::temp_store("events-order");
        record(&store, "abc", "create", &[]);
        record(&store, "abc", "die", &[("exitCode", "3".into())]);
        let (events, end) = read_from(&store, 0);
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "die"]);
        assert_eq!(events[1].attributes["exitCode"], "3");
        record(&store, "abc", "destroy", &[]);
        let (later, _) = read_from(&store, end);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].action, "destroy");
    }

    #[test]
    fn a_torn_last_line_waits_for_its_end() {
        let store = crate::runtime::store::temp_store("events-torn");
        record(&store, "abc", "start", &[]);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(journal_path(&store))
            .expect("open");
        f.write_all(b"{\"timeNano\":1,").expect("write");
        let (events, end) = read_from(&store, 0);
        assert_eq!(events.len(), 1);
        let (none, same) = read_from(&store, end);
        assert!(none.is_empty());
        assert_eq!(same, end);
    }
}
