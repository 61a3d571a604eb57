//! Every case Docker Compose v2.40.3 printed for `config --format json` over the
//! shared external compose files must come out the same from berth; failing
//! cases must fail with a message naming the cause.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::support::{drop_nulls, first_difference, shared_dir, TestCommand};

#[derive(Debug, Deserialize)]
struct Case {
    cwd: String,
    files: Vec<String>,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    exit_code: i32,
    config: serde_json::Value,
    stderr: String,
}

/// What berth's error must say for each case Docker Compose refuses.
fn expected_error(case: &Case) -> &'static str {
    let key = format!("{}/{}", case.cwd, case.files.join("+"));
    match key.as_str() {
        "compose-go/loader/testdata/compose-depends-on-cycle.yaml" => {
            "dependency cycle detected: service1 -> service2 -> service3 -> service1"
        }
        "compose-go/loader/testdata/compose-include-cycle.yaml" => "include cycle detected",
        "compose-go/loader/testdata/extends/base.yaml" => "services.nil must be a mapping",
        "compose-go/loader/testdata/include/dir/compose.yaml" => "include/dir/extra.env not found",
        "podman-compose/tests/integration/merge/reset_and_override_tags/override_tag_attribute/docker-compose.yaml" => {
            "service \"app\" depends on undefined service \"db\""
        }
        "podman-compose/tests/integration/merge/volumes_merge/docker-compose.override.yaml" => {
            "service \"web\" has neither an image nor a build context specified"
        }
        "podman-compose/tests/integration/yamlmagic/docker-compose.yml" => {
            "additional properties 'network' not allowed"
        }
        _ => "",
    }
}

#[test]
fn docker_compose_config_golden_cases() {
    let Some(shared) = shared_dir("the Docker Compose golden cases") else {
        return;
    };
    let root = shared.join("external");
    let golden = root.join("golden/docker-compose-v2.40.3-config.jsonl");
    let text = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("reading {}: {e}", golden.display()));
    let root_text = root
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .display()
        .to_string();
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let case: Case = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {n}: {e}"));
        count += 1;
        let mut args: Vec<String> = vec!["compose".into()];
        for f in &case.files {
            args.push("-f".into());
            args.push(f.clone());
        }
        let verb_at = case
            .args
            .iter()
            .position(|a| a == "config")
            .unwrap_or(case.args.len());
        args.extend(case.args[..verb_at].iter().cloned());
        args.extend(["config".into(), "--format".into(), "json".into()]);
        let out = TestCommand::new(&root.join(&case.cwd))
            .args(&args)
            .envs(&case.env)
            .output();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let label = format!("#{n} {} {:?} {:?}", case.cwd, case.files, case.env);
        if case.exit_code != 0 {
            let want = expected_error(&case);
            if out.status.success() {
                failures.push(format!(
                    "{label}: succeeded, expected failure like {:?}",
                    case.stderr
                ));
            } else if want.is_empty() || !stderr.contains(want) {
                failures.push(format!("{label}: error {stderr:?} does not name {want:?}"));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!("{label}: failed: {stderr}"));
            continue;
        }
        let got: serde_json::Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{label}: output is not JSON: {e}"));
                continue;
            }
        };
        let expected_text = case
            .config
            .to_string()
            .replace("${EXTERNAL_ROOT}", &root_text);
        let expected: serde_json::Value =
            serde_json::from_str(&expected_text).unwrap_or(serde_json::Value::Null);
        let (got, expected) = (drop_nulls(got), drop_nulls(expected));
        if got != expected {
            let diff = first_difference("", &got, &expected).unwrap_or_default();
            failures.push(format!("{label}: {diff}"));
        }
    }
    assert_eq!(count, 80, "the golden file should hold 80 cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
