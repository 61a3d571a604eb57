//! Logs of a project's containers, merged and prefixed as Docker Compose
//! prints them (`web-1  | …`, one color per container on a terminal):
//! `compose logs` and the attached `compose up`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::runtime::logs::{self, Entry, ReadOptions};
use crate::runtime::store::{Status, Store};

/// How to print.
#[derive(Debug, Clone, Default)]
pub struct Style {
    pub timestamps: bool,
    pub color: bool,
    pub prefix: bool,
}

/// One container whose log is printed.
pub struct Source {
    pub id: String,
    pub name: String,
    path: std::path::PathBuf,
    follower: logs::Follower,
}

impl Source {
    pub fn new(store: &Store, id: &str, name: &str) -> Source {
        let path = store.container_dir(id).join("log.jsonl");
        Source {
            id: id.to_string(),
            name: name.to_string(),
            follower: logs::Follower::from_start(&path),
            path,
        }
    }
}

impl Style {
    /// As the flags say; colors only on a terminal.
    pub fn from_flags(timestamps: bool, no_color: bool, no_prefix: bool) -> Style {
        Style {
            timestamps,
            color: !no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
            prefix: !no_prefix,
        }
    }
}

/// One source per container, named as Compose prefixes them (`web-1`).
pub fn sources(
    store: &Store,
    project: &str,
    containers: &[&crate::engine::observe::ActualContainer],
) -> Vec<Source> {
    containers
        .iter()
        .map(|c| {
            let short = c
                .name
                .strip_prefix(&format!("{project}-"))
                .unwrap_or(&c.name);
            Source::new(store, &c.id, short)
        })
        .collect()
}

const COLORS: &[u8] = &[36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

struct Printer<'a> {
    style: &'a Style,
    width: usize,
}

impl Printer<'_> {
    fn line(&self, index: usize, name: &str, e: &Entry) {
        let text = logs::render(e, self.style.timestamps);
        let mut out = std::io::stdout().lock();
        if !self.style.prefix {
            let _ = out.write_all(text.as_bytes());
            return;
        }
        let label = format!("{name:<width$} | ", width = self.width);
        for piece in text.split_inclusive('\n') {
            let _ = if self.style.color {
                let c = COLORS[index % COLORS.len()];
                write!(out, "\x1b[{c}m{label}\x1b[0m{piece}")
            } else {
                write!(out, "{label}{piece}")
            };
        }
        if !text.ends_with('\n') {
            let _ = writeln!(out);
        }
    }
}

/// Prints what the sources logged so far (merged by time), then, with
/// `follow`, what they log until every one has stopped or `stop` counts
/// past `stop_at`. `until_exit`: return as soon as any container stops
/// (`--abort-on-container-exit`), with its id.
pub fn print(
    store: &Store,
    sources: &mut [Source],
    opts: &ReadOptions,
    style: &Style,
    follow: bool,
    stop: Option<(&AtomicUsize, usize)>,
    until_exit: bool,
) -> Option<String> {
    let printer = Printer {
        style,
        // As Compose: the longest name plus one, then " | ".
        width: sources.iter().map(|s| s.name.len()).max().unwrap_or(0) + 1,
    };
    let mut first: Vec<(String, usize, Entry)> = Vec::new();
    for (i, s) in sources.iter_mut().enumerate() {
        let mut all = logs::entries_of(&s.path.with_extension("jsonl.1"));
        all.extend(s.follower.poll());
        for e in logs::select(all, opts) {
            first.push((e.time.clone(), i, e));
        }
    }
    first.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, i, e) in &first {
        printer.line(*i, &sources[*i].name, e);
    }
    if !follow {
        return None;
    }
    let since_only = ReadOptions {
        since: opts.since,
        until: opts.until,
        ..Default::default()
    };
    loop {
        let mut live = 0;
        let mut exited = None;
        for (i, s) in sources.iter_mut().enumerate() {
            let running = crate::runtime::effective_state(store, &s.id)
                .map(|st| {
                    matches!(
                        st.status,
                        Status::Running | Status::Restarting | Status::Paused
                    )
                })
                .unwrap_or(false);
            for e in logs::select(s.follower.poll(), &since_only) {
                printer.line(i, &s.name, &e);
            }
            if running {
                live += 1;
            } else if exited.is_none() {
                exited = Some(s.id.clone());
            }
        }
        if until_exit && exited.is_some() {
            return exited;
        }
        if live == 0 {
            return None;
        }
        if let Some((count, at)) = stop {
            if count.load(Ordering::SeqCst) > at {
                return None;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
