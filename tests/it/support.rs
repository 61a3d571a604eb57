//! Helpers: run the berth binary with a clean environment, find the shared
//! test material, compare JSON with null and absent alike.

use std::collections::BTreeMap;

#[path = "../common/shared.rs"]
mod shared;
pub use shared::shared_dir;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A `berth` invocation with only the variables a test gives it.
pub struct TestCommand {
    cmd: Command,
    stdin: Option<String>,
}

impl TestCommand {
    pub fn new(cwd: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/root");
        TestCommand { cmd, stdin: None }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn envs(mut self, vars: &BTreeMap<String, String>) -> Self {
        self.cmd.envs(vars);
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn output(mut self) -> Output {
        use std::io::Write;
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning berth: {e}"));
        if let (Some(text), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for berth: {e}"))
    }
}

/// Removes null members of objects, recursively: Compose prints some absent
/// fields as null.
pub fn drop_nulls(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

/// A readable description of where two JSON values first differ.
pub fn first_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => {
                        if let Some(d) = first_difference(&p, va, vb) {
                            return Some(d);
                        }
                    }
                    (va, vb) => return Some(format!("{p}: berth {va:?} vs expected {vb:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb)),
        _ if a == b => None,
        _ => Some(format!("{path}: berth {a} vs expected {b}")),
    }
}
