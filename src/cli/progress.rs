//! Compose's progress display. The engine reports `OBJECT  STATE` lines
//! (`Container shop-db-1  Creating`); on a terminal they become one line
//! per object, redrawn in place — a spinner while the state is in progress,
//! `✔` with the time it took once done, `✘` on failure — under a
//! `[+] Running k/n` header. Elsewhere (`--progress plain`, a pipe, `--ansi
//! never`) each change is one plain line with no mark, and `json` prints
//! one JSON object a change. Other lines (build output, notices) pass
//! through above the frame.
//!
//! Owns stderr drawing only; what happens is the engine's.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
    Quiet,
}

impl Mode {
    /// From `--progress auto|tty|plain|json|quiet` and `--ansi
    /// never|always|auto`: auto is a redrawn frame on a terminal (unless
    /// NO_COLOR or `--ansi never`), plain lines elsewhere.
    pub fn choose(progress: &str, ansi: &str) -> Mode {
        match progress {
            "plain" => Mode::Plain,
            "json" => Mode::Json,
            "quiet" => Mode::Quiet,
            "tty" => Mode::Tty,
            _ => {
                let terminal = std::io::stderr().is_terminal();
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                match ansi {
                    "never" => Mode::Plain,
                    "always" => Mode::Tty,
                    _ if terminal && !no_color => Mode::Tty,
                    _ => Mode::Plain,
                }
            }
        }
    }
}

struct Object {
    name: String,
    state: String,
    started: Instant,
    took: Option<Duration>,
    failed: bool,
}

struct Frame {
    mode: Mode,
    objects: Vec<Object>,
    drawn: usize,
    ticking: bool,
    stop: bool,
}

fn frame() -> &'static Mutex<Frame> {
    static FRAME: OnceLock<Mutex<Frame>> = OnceLock::new();
    FRAME.get_or_init(|| {
        Mutex::new(Frame {
            mode: Mode::choose("auto", "auto"),
            objects: Vec::new(),
            drawn: 0,
            ticking: false,
            stop: false,
        })
    })
}

/// Sets how progress is shown, once, before the verb runs.
pub fn set_mode(mode: Mode) {
    if let Ok(mut f) = frame().lock() {
        f.mode = mode;
    }
}

/// Whether a state is an end state (`Created`, `Started`, `Healthy`…).
fn is_done(state: &str) -> bool {
    let word = state.split_whitespace().next().unwrap_or("");
    word.ends_with("ed") || matches!(word, "Healthy" | "Running" | "Exited" | "Built")
}

fn is_failure(state: &str) -> bool {
    let word = state.split_whitespace().next().unwrap_or("");
    matches!(word, "Error" | "Failed" | "Unhealthy")
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn redraw(f: &mut Frame, out: &mut impl Write) {
    let mut text = String::new();
    if f.drawn > 0 {
        text.push_str(&format!("\x1b[{}A", f.drawn));
    }
    let done = f.objects.iter().filter(|o| o.took.is_some()).count();
    text.push_str(&format!("\x1b[2K[+] Running {done}/{}\n", f.objects.len()));
    for o in &f.objects {
        let mark = if o.failed {
            "\x1b[31m✘\x1b[0m".to_string()
        } else if o.took.is_some() {
            "\x1b[32m✔\x1b[0m".to_string()
        } else {
            let n = (o.started.elapsed().as_millis() / 100) as usize % SPINNER.len();
            SPINNER[n].to_string()
        };
        let secs = o.took.unwrap_or_else(|| o.started.elapsed()).as_secs_f64();
        text.push_str(&format!(
            "\x1b[2K {mark} {}  {}  {secs:.1}s\n",
            o.name, o.state
        ));
    }
    f.drawn = f.objects.len() + 1;
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn ticker() -> &'static Mutex<Option<std::thread::JoinHandle<()>>> {
    static TICKER: OnceLock<Mutex<Option<std::thread::JoinHandle<()>>>> = OnceLock::new();
    TICKER.get_or_init(|| Mutex::new(None))
}

/// Keeps the spinners turning while something is in progress.
fn tick() {
    let handle = std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(mut f) = frame().lock() else { return };
        if f.stop || f.objects.iter().all(|o| o.took.is_some()) {
            f.ticking = false;
            return;
        }
        redraw(&mut f, &mut std::io::stderr().lock());
    });
    if let Ok(mut t) = ticker().lock() {
        *t = Some(handle);
    }
}

/// Stops the spinners' thread (before this process starts a container in
/// the foreground, which must be done single-threaded) and leaves the last
/// frame drawn.
pub fn finish() {
    if let Ok(mut f) = frame().lock() {
        f.stop = true;
    }
    let handle = ticker().lock().ok().and_then(|mut t| t.take());
    if let Some(h) = handle {
        let _ = h.join();
    }
    if let Ok(mut f) = frame().lock() {
        f.stop = false;
        if f.mode == Mode::Tty && !f.objects.is_empty() {
            redraw(&mut f, &mut std::io::stderr().lock());
        }
    }
}

/// Reports one line of progress.
pub fn report(line: &str) {
    let Ok(mut f) = frame().lock() else {
        eprintln!("{line}");
        return;
    };
    let mut err = std::io::stderr().lock();
    let Some((name, state)) = line.split_once("  ") else {
        // Not an object's state: a line of its own.
        match f.mode {
            Mode::Quiet => {}
            Mode::Json => {
                let _ = writeln!(err, "{}", serde_json::json!({"text": line}));
            }
            Mode::Plain => {
                let _ = writeln!(err, " {line}");
            }
            Mode::Tty => {
                if f.drawn > 0 {
                    let _ = write!(err, "\x1b[{}A\x1b[J", f.drawn);
                    f.drawn = 0;
                }
                let _ = writeln!(err, "{line}");
                if !f.objects.is_empty() {
                    redraw(&mut f, &mut err);
                }
            }
        }
        return;
    };
    let (name, state) = (name.trim().to_string(), state.trim().to_string());
    match f.mode {
        Mode::Quiet => {}
        Mode::Plain => {
            let _ = writeln!(err, " {name}  {state}");
        }
        Mode::Json => {
            let _ = writeln!(
                err,
                "{}",
                serde_json::json!({"id": name, "status": state, "done": is_done(&state)})
            );
        }
        Mode::Tty => {
            let now = Instant::now();
            let idx = match f.objects.iter().position(|o| o.name == name) {
                Some(i) => i,
                None => {
                    f.objects.push(Object {
                        name: name.clone(),
                        state: String::new(),
                        started: now,
                        took: None,
                        failed: false,
                    });
                    f.objects.len() - 1
                }
            };
            let o = &mut f.objects[idx];
            if o.took.is_some() && !is_done(&state) {
                // A new step of a done object (Created, then Starting).
                o.took = None;
            }
            o.state = state.clone();
            o.failed = is_failure(&state);
            if is_done(&state) || o.failed {
                o.took = Some(o.started.elapsed());
            }
            redraw(&mut f, &mut err);
            if !f.ticking && f.objects.iter().any(|o| o.took.is_none()) {
                f.ticking = true;
                tick();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_states_and_failures_are_told_apart() {
        for done in [
            "Created", "Started", "Healthy", "Removed", "Stopped", "Built", "Exited",
        ] {
            assert!(is_done(done), "{done}");
        }
        for going in [
            "Creating", "Starting", "Waiting", "Stopping", "Pulling", "Recreate",
        ] {
            assert!(!is_done(going), "{going}");
        }
        assert!(is_failure("Error") && !is_failure("Started"));
        assert_eq!(Mode::choose("plain", "always"), Mode::Plain);
        assert_eq!(Mode::choose("auto", "never"), Mode::Plain);
        assert_eq!(Mode::choose("auto", "always"), Mode::Tty);
        assert_eq!(Mode::choose("quiet", "auto"), Mode::Quiet);
    }
}
