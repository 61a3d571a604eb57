//! Mutation fuzzing of the loader: the shared external compose files, mutated
//! by byte flips, line edits, splices and compose-specific insertions, must
//! never make the loader panic. Runs for a bounded time (BERTH_FUZZ_SECS,
//! default 20) with a fixed seed, so a failure is reproducible from its report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::spec::{load, ProjectOptions};

use crate::support::shared_dir;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "${",
    "${X:-",
    "}",
    "$$",
    "$",
    ":?err}",
    "!reset ",
    "!override ",
    "<<: *a\n",
    "&a ",
    "*a",
    "- ",
    ": ",
    "\n  ",
    "\n    - ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "#",
    "~/",
    "../",
    "0440",
    "1.5G",
    "1m30s",
    "-1",
    "65536",
    "8080-8070:80",
    "[::1]:80:80",
    "service:",
    "extends: x\n",
    "include: [x]\n",
    "null",
    "\t",
    "\u{feff}",
    "é",
    "\\",
    ":",
    ",",
    "=",
    "99999999999999999999",
];

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(16).min(len - i);
                data.drain(i..i + n);
            }
            2 => {
                let i = rng.below(len + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(i..i, t.iter().copied());
            }
            3 => {
                // Duplicate or drop a whole line.
                let text = String::from_utf8_lossy(&data).to_string();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    if rng.below(2) == 0 {
                        let l = lines[i];
                        lines.insert(i, l);
                    } else {
                        lines.remove(i);
                    }
                }
                data = lines.join("\n").into_bytes();
            }
            4 => {
                // Splice in part of another file.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + rng.below(200)).min(other.len());
                    let i = rng.below(len + 1);
                    data.splice(i..i, other[a..b].iter().copied());
                }
            }
            5 => {
                // Re-indent a line.
                let text = String::from_utf8_lossy(&data).to_string();
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                if !lines.is_empty() {
                    let i = rng.below(lines.len());
                    let trimmed = lines[i].trim_start().to_string();
                    lines[i] = format!("{}{}", " ".repeat(rng.below(9)), trimmed);
                }
                data = lines.join("\n").into_bytes();
            }
            _ => {
                let i = rng.below(len + 1);
                data.insert(i, rng.below(256) as u8);
            }
        }
    }
    data
}

fn compose_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            compose_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn mutated_compose_files_never_panic() {
    let Some(shared) = shared_dir("fuzzing the shared compose files") else {
        return;
    };
    let mut files = Vec::new();
    compose_files(&shared.join("external"), &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "expected the shared compose files, found {}",
        files.len()
    );
    let corpus: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    let secs: u64 = std::env::var("BERTH_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut runs = 0u64;
    let mut loaded = 0u64;
    while Instant::now() < deadline {
        let which = rng.below(files.len());
        let input = mutate(&mut rng, &corpus[which], &corpus);
        let text = String::from_utf8_lossy(&input).to_string();
        let dir = files[which]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let opts = ProjectOptions {
            files: vec!["-".into()],
            stdin: Some(text.clone()),
            cwd: dir,
            project_name: Some("fuzz".into()),
            interpolate: true,
            os_env: [("HOME".to_string(), "/root".to_string())].into(),
            ..Default::default()
        };
        let result = std::panic::catch_unwind(|| load(&opts).map(|p| p.name));
        match result {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!(
                "loader panicked on a mutation of {} (run {runs}):\n{text}",
                files[which].display()
            ),
        }
        runs += 1;
    }
    assert!(runs > 100, "only {runs} runs in {secs}s");
    eprintln!("fuzz: {runs} mutated inputs, {loaded} loaded, no panic");
}
