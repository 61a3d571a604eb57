//! What a container sees from inside, and how it behaves from outside.

use std::time::Duration;

use crate::support::{assert_stdout, Berth};

#[test]
fn isolated_pid_namespace_with_init_as_pid_1() {
    let b = Berth::new("pid");
    let (code, out, err) = b.run(&[], &["ps", "-o", "pid,args"]);
    assert_eq!(code, 0, "{err}");
    let pids: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        pids,
        vec!["1", "2"],
        "only the container's processes: {out}"
    );
    assert!(
        out.lines().nth(1).is_some_and(|l| l.contains("berth-init")),
        "PID 1 is the init: {out}"
    );
    let (_, out, _) = b.run(&["--init=false"], &["sh", "-c", "echo $$"]);
    assert_eq!(out.trim(), "1", "without init the command is PID 1");
}

#[test]
fn exit_codes_propagate() {
    let b = Berth::new("exit");
    assert_eq!(b.run(&[], &["sh", "-c", "exit 7"]).0, 7);
    assert_eq!(b.run(&["--init=false"], &["sh", "-c", "exit 9"]).0, 9);
    let (code, _, err) = b.run(&[], &["no-such-command"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    // Found but not runnable: refused before the init runs, and named.
    let (code, _, err) = b.run(&[], &["/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    assert!(
        err.contains("exec: \"/etc/passwd\": permission denied"),
        "{err}"
    );
    assert_eq!(b.run(&[], &["sh", "-c", "kill -9 $$"]).0, 137);
}

#[test]
fn hostname_user_and_working_dir() {
    let b = Berth::new("user");
    let (code, out, err) = b.run(
        &["-h", "myhost", "-u", "nobody", "-w", "/tmp/work"],
        &["sh", "-c", "hostname; id -u; id -g; pwd; cat /etc/hostname"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "myhost\n65534\n65534\n/tmp/work\nmyhost\n");
    let (_, out, _) = b.run(&["-u", "1234:5678"], &["sh", "-c", "id -u; id -g"]);
    assert_eq!(out, "1234\n5678\n");
    let (code, _, err) = b.run(&["-u", "ghost"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user ghost"), "{err}");
}

#[test]
fn proc_sys_and_dev_are_confined() {
    let b = Berth::new("fs");
    let script = "cat /proc/timer_list | wc -c; cat /proc/sched_debug 2>/dev/null | wc -c; \
                  touch /sys/x 2>/dev/null && echo sys-writable; \
                  echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable; \
                  ls /dev | tr '\\n' ' '";
    let (code, out, err) = b.run(&[], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "masked /proc/timer_list reads empty");
    assert_eq!(lines[1], "0");
    assert!(!out.contains("writable"), "{out}");
    assert_eq!(
        lines[2].trim(),
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"
    );
}

#[test]
fn capabilities_no_new_privs_and_seccomp() {
    let b = Berth::new("caps");
    let status = |flags: &[&str]| {
        let (code, out, err) = b.run(
            flags,
            &[
                "grep",
                "-E",
                "^(CapEff|NoNewPrivs|Seccomp):",
                "/proc/self/status",
            ],
        );
        assert_eq!(code, 0, "{err}");
        out
    };
    let default = status(&[]);
    assert!(default.contains("CapEff:\t00000000a80425fb"), "{default}");
    assert!(default.contains("NoNewPrivs:\t1"), "{default}");
    assert!(default.contains("Seccomp:\t2"), "{default}");
    assert!(status(&["--cap-add", "NET_ADMIN"]).contains("CapEff:\t00000000a80435fb"));
    assert!(status(&["--cap-drop", "CHOWN"]).contains("CapEff:\t00000000a80425fa"));
    assert!(status(&["--cap-drop", "ALL"]).contains("CapEff:\t0000000000000000"));
    // Refused syscalls fail with EPERM under the default filter.
    let (_, out, _) = b.run(&[], &["sh", "-c", "unshare -n true 2>&1; echo $?"]);
    assert!(out.trim().ends_with('1'), "unshare must be refused: {out}");
}

#[test]
fn only_standard_descriptors_cross_into_the_container() {
    let b = Berth::new("fds");
    let script = r#"for p in 1 $$; do for f in /proc/$p/fd/*; do [ -e "$f" ] && echo "$p:${f##*/}"; done; done; true"#;
    let (code, out, err) = b.run(&[], &["sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    let fds: Vec<&str> = out.lines().collect();
    assert_eq!(fds, vec!["1:0", "1:1", "1:2", "2:0", "2:1", "2:2"], "{out}");
}

/// What a container's processes can reach of PID 1's binary: the lines a
/// write through each `/proc/PID/exe` made, every descriptor's target, and
/// what `/proc/1/exe` names (last line).
const EXE_PROBE: &str =
    "for p in /proc/[0-9]*; do (echo x >> $p/exe) 2>/dev/null && echo WROTE $p; \
                         for f in $p/fd/*; do readlink $f; done; done; readlink /proc/1/exe";

#[test]
fn host_binary_cannot_be_written_from_inside() {
    let b = Berth::new("cve");
    let (code, out, err) = b.run(&[], &["sh", "-c", EXE_PROBE]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(
        !out.contains("berth/target"),
        "no descriptor or link names a host binary: {out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("/memfd:berth-init (deleted)"),
        "PID 1 runs the freestanding init from a sealed memfd: {out}"
    );
    // The init is not a file of the store: the shared bind target stays
    // empty (untouched), and a container makes no file of its own for it.
    let id = b.detached(&[], &["sleep", "30"]);
    let target = b.root.join("containers/init");
    assert!(
        std::fs::metadata(&target).map_or(true, |m| m.len() == 0),
        "{}",
        target.display()
    );
    assert!(!b.container_dir(&id).join("init").exists());
    let out = b.cmd(&["exec", &id, "sh", "-c", EXE_PROBE]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains("WROTE"), "{text}");
    assert_eq!(
        text.lines().last(),
        Some("/memfd:berth-init (deleted)"),
        "a running container's init: {text}"
    );
    b.text(&["rm", "-f", &id]);
}

/// The fallback init (berth's helper binary, where the memfd cannot be
/// run) is protected as well: bound read-only over one shared empty file
/// in the child's own mount namespace, detached with the old root.
#[test]
fn host_binary_cannot_be_written_through_the_helper_init() {
    let b = Berth::new("cve-helper");
    let env = [("BERTH_INIT_FROM_HELPER", "1")];
    let rootfs = crate::support::rootfs().display().to_string();
    let out = b.cmd_with(
        std::path::Path::new("."),
        &env,
        &["run", "--rootfs", &rootfs, "sh", "-c", EXE_PROBE],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("WROTE"), "{text}");
    assert!(
        !text.contains("berth/target"),
        "no descriptor or link names the host binary: {text}"
    );
    assert_eq!(
        text.lines().last(),
        Some("/"),
        "PID 1's binary sits on a detached read-only mount: {text}"
    );
    let out = b.cmd_with(
        std::path::Path::new("."),
        &env,
        &["run", "-d", "--rootfs", &rootfs, "sleep", "30"],
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let target = b.root.join("containers/init");
    let meta = std::fs::metadata(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    assert!(meta.is_file() && meta.len() == 0, "{meta:?}");
    assert!(!b.container_dir(&id).join("init").exists());
    let init = b.state(&id)["pid"].as_i64().unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("berth-init\0__berth_init"),
        "{cmdline:?}"
    );
    let out = b.cmd(&["exec", &id, "readlink", "/proc/1/exe"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/",
        "a running container's init is detached too"
    );
    b.text(&["rm", "-f", &id]);
}

#[test]
fn writes_land_in_the_upper_dir_only() {
    let b = Berth::new("overlay");
    let id = b.detached(
        &[],
        &["sh", "-c", "echo data > /root/new; rm /etc/group; sleep 30"],
    );
    let upper = b.container_dir(&id).join("upper");
    // The shell creates the file before it writes it: wait for the content.
    assert!(b.until(Duration::from_secs(10), || std::fs::read_to_string(
        upper.join("root/new")
    )
    .is_ok_and(|t| t == "data\n")));
    assert_eq!(
        std::fs::read_to_string(upper.join("root/new")).unwrap_or_default(),
        "data\n"
    );
    assert!(
        crate::support::rootfs().join("etc/group").exists(),
        "the lower dir is untouched"
    );
    assert!(!crate::support::rootfs().join("root/new").exists());
    b.text(&["rm", "-f", &id]);
}

#[test]
fn memory_limit_kills_with_137_and_records_oom() {
    let b = Berth::new("oom");
    let (code, _, _) = b.run(
        &["--name", "hog", "-m", "16m", "--memory-swap", "16m"],
        &["sh", "-c", "head -c 100000000 /dev/zero | tail"],
    );
    assert_eq!(code, 137);
    let v = b.inspect("hog");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v["State"]["ExitCode"], 137);
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let b = Berth::new("pids");
    let (_, out, err) = b.run(
        &["--pids-limit", "8"],
        &[
            "sh",
            "-c",
            "for i in $(seq 1 30); do sleep 5 & done; echo looped",
        ],
    );
    assert!(
        err.contains("can't fork"),
        "the limit must refuse forks: {out} {err}"
    );
    let (code, out, err) = b.run(
        &[],
        &[
            "sh",
            "-c",
            "for i in $(seq 1 30); do sleep 0.1 & done; wait; echo looped",
        ],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "looped\n"),
        "without a limit the loop runs: {err}"
    );
}

#[test]
fn stop_uses_init_then_falls_back_to_sigkill() {
    let b = Berth::new("stop");
    // busybox httpd ignores SIGTERM as PID 1; berth's init forwards it to a child that does not.
    let with_init = b.detached(&[], &["httpd", "-f", "-h", "/www"]);
    b.text(&["stop", "-t", "30", &with_init]);
    assert_eq!(
        b.inspect(&with_init)["State"]["ExitCode"],
        143,
        "ended by SIGTERM"
    );
    let without = b.detached(&["--init=false"], &["httpd", "-f", "-h", "/www"]);
    b.text(&["stop", "-t", "1", &without]);
    assert_eq!(
        b.inspect(&without)["State"]["ExitCode"],
        137,
        "SIGTERM ignored, then SIGKILL"
    );
}

#[test]
fn the_shim_runs_from_the_helper_binary_and_the_init_is_freestanding() {
    let b = Berth::new("lean");
    let id = b.detached(
        &["--name", "lean"],
        &["sh", "-c", "echo up; while true; do sleep 1; done"],
    );
    let st = b.state(&id);
    let shim = st["shim_pid"].as_i64().unwrap_or(0);
    let init = st["pid"].as_i64().unwrap_or(0);
    assert!(shim > 0 && init > 0, "{st}");
    // The shim is the small helper binary, not the CLI.
    let helper = std::path::Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berth-helper");
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exe, helper, "the shim's binary");
    // The init is the freestanding one: a few pages, nothing to give back.
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).starts_with("berth-init\0/bin/sh\0sh"),
        "{cmdline:?}"
    );
    let init_rss = crate::support::rss_kib(init);
    assert!(init_rss > 0 && init_rss <= 64, "init RSS {init_rss} KiB");
    let before = crate::support::rss_kib(shim);
    // Once settled, the shim has given back what its start-up touched.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after = crate::support::rss_kib(shim);
    assert!(after < before, "shim RSS {before} → {after}");
    // And both still do their work: output relayed, exec, a stop forwarded.
    assert_eq!(b.text(&["logs", "lean"]), "up\n");
    assert_eq!(b.text(&["exec", "lean", "echo", "in"]), "in\n");
    b.text(&["stop", "-t", "10", "lean"]);
    assert_eq!(b.inspect(&id)["State"]["ExitCode"], 143, "ended by SIGTERM");
    // `system df -v` lists what runs, with its memory: nothing now.
    let df = b.text(&["system", "df", "-v"]);
    assert!(
        df.contains("Resident helpers (memory as PSS; 0 processes"),
        "{df}"
    );
}

#[test]
fn detached_containers_outlive_the_cli_and_logs_follow() {
    let b = Berth::new("logs");
    let id = b.detached(
        &["--name", "talker"],
        &["sh", "-c", "echo one; echo err >&2; sleep 1; echo two"],
    );
    assert_eq!(b.status(&id), "running");
    let ps = b.text(&["ps"]);
    assert!(ps.contains("talker"), "{ps}");
    let out = b.cmd(&["logs", "-f", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(b.status(&id), "exited");
    assert_eq!(b.text(&["logs", "--tail", "1", "talker"]), "two\n");
    let ts = b.text(&["logs", "-t", "talker"]);
    assert!(ts.lines().all(|l| l.contains("Z ")), "{ts}");
    assert_eq!(b.text(&["wait", "talker"]).trim(), "0");
    assert!(!b.text(&["ps"]).contains("talker"));
    assert!(b.text(&["ps", "-a"]).contains("talker"));
}

#[test]
fn on_failure_restarts_exactly_twice() {
    let b = Berth::new("restart");
    let id = b.detached(
        &["--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 3"],
    );
    assert!(b.until(Duration::from_secs(20), || b.status(&id) == "exited"));
    let v = b.inspect(&id);
    assert_eq!(v["RestartCount"], 2, "{v}");
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(b.text(&["logs", &id]), "run\nrun\nrun\n");
}

#[test]
fn killing_one_shim_leaves_other_containers_running() {
    let b = Berth::new("shims");
    let a = b.detached(&[], &["sleep", "60"]);
    let c = b.detached(&[], &["sleep", "60"]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.root.join("run/containers").join(&a).join("state.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let shim = state["shim_pid"].as_i64().unwrap_or(0) as i32;
    assert!(shim > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.status(&c), "running");
    b.text(&["rm", "-f", &a, &c]);
}

#[test]
fn paused_container_stops_counting() {
    let b = Berth::new("pause");
    let id = b.detached(
        &[],
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
        ],
    );
    let counter = b.container_dir(&id).join("upper/tmp/count");
    let read = || {
        std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(b.until(Duration::from_secs(10), || read() > 2));
    b.text(&["pause", &id]);
    assert_eq!(b.status(&id), "paused");
    std::thread::sleep(Duration::from_millis(100));
    let frozen = read();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(read(), frozen, "no progress while paused");
    b.text(&["unpause", &id]);
    assert!(b.until(Duration::from_secs(10), || read() > frozen));
    b.text(&["rm", "-f", &id]);
}

#[test]
fn rm_refuses_running_containers_and_names_are_unique() {
    let b = Berth::new("rm");
    let id = b.detached(&["--name", "busy"], &["sleep", "60"]);
    let out = b.cmd(&["rm", "busy"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first or use --force"));
    let (code, _, err) = b.run(&["--name", "busy"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("already in use"), "{err}");
    b.text(&["rm", "-f", "busy"]);
    assert!(!b.container_dir(&id).exists());
    let (code, _, _) = b.run(&["--rm", "--name", "gone"], &["true"]);
    assert_eq!(code, 0);
    assert!(!b.text(&["ps", "-a"]).contains("gone"));
}

#[test]
fn exec_joins_the_containers_namespaces_and_confinement() {
    let b = Berth::new("exec");
    let id = b.detached(&["-h", "exech"], &["sleep", "60"]);
    let script = r#"hostname; for n in pid mnt net uts ipc cgroup; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && echo same-$n; done; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; exit 4"#;
    let out = b.cmd(&["exec", &id, "sh", "-c", script]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for n in ["pid", "mnt", "net", "uts", "ipc", "cgroup"] {
        assert!(text.contains(&format!("same-{n}")), "{n}: {text}");
    }
    assert!(text.starts_with("exech\n"), "{text}");
    assert!(
        text.contains("CapEff:\t00000000a80425fb") && text.contains("Seccomp:\t2"),
        "{text}"
    );
    assert_eq!(
        b.text(&["exec", "-u", "nobody", &id, "id", "-u"]),
        "65534\n"
    );
    assert_eq!(b.text(&["exec", "-w", "/tmp", &id, "pwd"]), "/tmp\n");
    assert_eq!(
        b.text(&["exec", "-e", "X=42", &id, "sh", "-c", "echo $X"]),
        "42\n"
    );
    let missing = b.cmd(&["exec", &id, "no-such-cmd"]);
    assert_eq!(missing.status.code(), Some(127));
    b.text(&["stop", "-t", "1", &id]);
    let stopped = b.cmd(&["exec", &id, "true"]);
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("is not running"));
}

#[test]
fn mounts_read_only_root_env_and_sysctls() {
    let b = Berth::new("mounts");
    let host = std::env::temp_dir().join(format!("berth-bind-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&host);
    std::fs::write(host.join("in.txt"), "from host\n").unwrap_or_default();
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/ro:ro", host.display());
    let script = "cat /data/in.txt; echo out > /data/out.txt; touch /ro/x 2>/dev/null || echo ro-refused; \
                  touch /scratch/x && grep -c ' /scratch tmpfs' /proc/mounts; echo $GREETING; cat /proc/sys/net/ipv4/ip_forward";
    let (code, out, err) = b.run(
        &[
            "-v",
            &rw,
            "-v",
            &ro,
            "--tmpfs",
            "/scratch:size=1m",
            "-e",
            "GREETING=hi",
            "--sysctl",
            "net.ipv4.ip_forward=1",
        ],
        &["sh", "-c", script],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from host\nro-refused\n1\nhi\n1\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap_or_default(),
        "out\n"
    );
    let (_, out, _) = b.run(
        &["--read-only", "--tmpfs", "/tmp"],
        &[
            "sh",
            "-c",
            "touch /x 2>/dev/null || echo root-ro; touch /tmp/y && echo tmp-ok",
        ],
    );
    assert_eq!(out, "root-ro\ntmp-ok\n");
    let (code, _, err) = b.run(&["--sysctl", "vm.swappiness=1"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("is not allowed"), "{err}");
    let _ = std::fs::remove_dir_all(&host);
}

#[test]
fn top_stats_prune_and_info() {
    let b = Berth::new("housekeeping");
    let id = b.detached(&["--name", "sleeper"], &["sleep", "60"]);
    let top = b.text(&["top", "sleeper"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 60"), "{top}");
    let stats = b.text(&["stats", "--no-stream", "--format", "json", "sleeper"]);
    let v: serde_json::Value = serde_json::from_str(stats.trim()).unwrap_or_default();
    assert_eq!(v["Name"], "sleeper");
    assert!(v["PIDs"].as_str().is_some_and(|p| p != "0"), "{stats}");
    let done = b.detached(&[], &["true"]);
    assert!(b.until(Duration::from_secs(10), || b.status(&done) == "exited"));
    let refused = b.cmd(&["container", "prune"]);
    assert!(
        !refused.status.success(),
        "no prompt without a terminal: needs --force"
    );
    let pruned = b.text(&["container", "prune", "--force"]);
    assert!(pruned.contains(&done), "{pruned}");
    assert!(!pruned.contains(&id), "running containers stay: {pruned}");
    let info = b.text(&["system", "info"]);
    assert!(info.contains("Containers: 1\n Running: 1\n"), "{info}");
    assert!(info.contains("Cgroup Version: "), "{info}");
}

#[test]
fn terminal_mode_runs_interactively() {
    let b = Berth::new("tty");
    let (code, out, err) = b.run(
        &["-t"],
        &["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-terminal"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "is-a-terminal\r\n", "output goes through the terminal");
    // -it under a real terminal: input reaches the shell, its exit code comes back.
    let berth = env!("CARGO_BIN_EXE_berth");
    let rootfs = crate::support::rootfs().display().to_string();
    let inner = format!("unshare --mount --net -- {berth} run -it --rootfs {rootfs} sh");
    let mut child = b.under_terminal(&inner);
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"echo inside-$((6*7))\nexit 5\n");
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("inside-42"));
}

#[test]
fn attach_streams_output_and_feeds_input() {
    let b = Berth::new("attach");
    let id = b.detached(&["-i"], &["sh"]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["attach", &id])
        .env("BERTH_ROOT", &b.root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"echo attached-$((2+3))\necho to-err >&2\nexit 6\n");
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "attached-5\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    assert_eq!(
        b.text(&["logs", &id]),
        "attached-5\n",
        "attached output is logged too"
    );
    let late = b.detached(&[], &["sh", "-c", "sleep 0.5; echo late; exit 2"]);
    let out = b.cmd(&["attach", &late]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "late\n");
}

#[test]
fn exec_terminal_console_groups_and_shared_network() {
    let b = Berth::new("exec-tty");
    let id = b.detached(&["--name", "netowner"], &["sleep", "60"]);
    let out = b.cmd(&[
        "exec",
        "-t",
        &id,
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo exec-tty",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-tty\r\n");
    // A terminal run has a console: the same terminal as its stdin.
    let (_, out, _) = b.run(
        &["-t"],
        &[
            "sh",
            "-c",
            "[ /dev/console -ef /proc/self/fd/0 ] && echo console-is-tty",
        ],
    );
    assert_eq!(out, "console-is-tty\r\n");
    // Supplementary groups come from the container's /etc/group.
    let group_root = std::env::temp_dir().join(format!("berth-groups-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&group_root);
    let copy = std::process::Command::new("cp")
        .args([
            "-a",
            &crate::support::rootfs().display().to_string(),
            &group_root.display().to_string(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(copy);
    std::fs::write(
        group_root.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n",
    )
    .unwrap_or_default();
    let out = b.cmd(&[
        "run",
        "--rootfs",
        &group_root.display().to_string(),
        "-u",
        "nobody",
        "id",
        "-G",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "65534 50\n");
    let _ = std::fs::remove_dir_all(&group_root);
    // network_mode container:NAME shares the other container's namespace.
    let owner_ns = b.text(&["exec", &id, "readlink", "/proc/self/ns/net"]);
    let (code, joined, err) = b.run(
        &["--network", "container:netowner"],
        &["readlink", "/proc/self/ns/net"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(joined, owner_ns);
    let (_, own, _) = b.run(&[], &["readlink", "/proc/self/ns/net"]);
    assert_ne!(own, owner_ns);
    let (code, _, err) = b.run(&["--network", "container:nobody-here"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("no such container"), "{err}");
}

#[test]
fn detach_keys_leave_a_terminal_container_running() {
    let b = Berth::new("detach");
    let id = b.detached(&["-i", "-t"], &["sh"]);
    let inner = format!("{} attach {id}", env!("CARGO_BIN_EXE_berth"));
    let mut child = b.under_terminal(&inner);
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"echo still-$((40+2))\n");
        std::thread::sleep(Duration::from_millis(300));
        let _ = stdin.write_all(&[0x10, 0x11]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("still-42"));
    assert_eq!(
        b.status(&id),
        "running",
        "detaching does not stop the container"
    );
    b.text(&["rm", "-f", &id]);
}

#[test]
fn run_takes_named_and_anonymous_volumes_as_docker_does() {
    let b = Berth::new("run-volumes");
    // A named volume that does not exist is made and filled from the image.
    let (code, out, err) = b.run(
        &["--rm", "-v", "site:/www"],
        &["sh", "-c", "cat /www/index.html; echo more > /www/more"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello from berth\n");
    let data = b.root.join("volumes/site/_data");
    assert!(data.join("index.html").is_file() && data.join("more").is_file());
    assert!(b.text(&["volume", "ls", "-q"]).lines().any(|l| l == "site"));
    // Its content outlives the container; a later mount sees it.
    let (_, out, _) = b.run(
        &["--rm", "--mount", "type=volume,src=site,dst=/srv,readonly"],
        &[
            "sh",
            "-c",
            "cat /srv/more; touch /srv/x 2>/dev/null || echo read-only",
        ],
    );
    assert_eq!(out, "more\nread-only\n");
    // nocopy: an empty new volume.
    let (_, out, _) = b.run(&["--rm", "-v", "blank:/www:nocopy"], &["ls", "/www"]);
    assert_eq!(out, "");
    // An anonymous volume goes with its container.
    let id = b.detached(
        &["-v", "/scratch"],
        &["sh", "-c", "touch /scratch/x; sleep 60"],
    );
    let v = b.inspect(&id);
    let mounts = v["Mounts"].as_array().cloned().unwrap_or_default();
    let scratch = mounts
        .iter()
        .find(|m| m["Destination"] == "/scratch")
        .and_then(|m| m["Source"].as_str())
        .unwrap_or_else(|| panic!("{mounts:?}"))
        .to_string();
    assert!(std::path::Path::new(&scratch).join("x").exists());
    b.text(&["rm", "-f", &id]);
    assert!(
        !std::path::Path::new(&scratch).exists(),
        "{scratch} outlived its container"
    );
    assert!(data.is_dir(), "a named volume stays");
    for bad in ["bad*name:/x", "site:relative"] {
        let (code, _, err) = b.run(&["--rm", "-v", bad], &["true"]);
        assert_eq!(code, 125, "{bad}");
        assert!(err.contains("invalid volume"), "{bad}: {err}");
    }
}

/// A new named volume takes the owner and mode of the image's directory it
/// is mounted over, so a server running as its own user can write there
/// (PostgreSQL's PGDATA under `user: postgres`), as Docker's copy-up does.
#[test]
fn a_new_volume_takes_the_owner_and_mode_of_the_image_directory() {
    use std::os::unix::fs::PermissionsExt;
    let b = Berth::new("volume-owner");
    let dir = crate::support::rootfs().join("owned-by-nobody");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1770))
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = b.run(
        &[
            "--rm",
            "--user",
            "65534:65534",
            "-v",
            "pgdata:/owned-by-nobody",
        ],
        &[
            "sh",
            "-c",
            "touch /owned-by-nobody/written && stat -c '%u:%g %a' /owned-by-nobody",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "65534:65534 1770\n");
    assert!(b.root.join("volumes/pgdata/_data/written").is_file());
}

/// As Docker: a container with a network namespace of its own lets any user
/// bind any port (a server that drops to its own user still listens on 80);
/// a --sysctl of the user's wins.
#[test]
fn a_non_root_server_may_listen_on_a_low_port() {
    let b = Berth::new("low-port");
    let (code, out, err) = b.run(
        &["--rm", "--user", "65534:65534"],
        &[
            "sh",
            "-c",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; httpd -p 80 -h /www && echo listening",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\nlistening\n");
    let (_, out, _) = b.run(
        &[
            "--rm",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=1024",
        ],
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    );
    assert_eq!(out, "1024\n");
}

/// `stop` of a container between two runs of its restart policy ends it at
/// once: it does not wait out the back-off, nor start again after.
#[test]
fn stopping_a_restarting_container_ends_it_at_once() {
    let b = Berth::new("stop-restarting");
    let id = b.detached(&["--restart", "always"], &["sh", "-c", "exit 3"]);
    // Exits every time: after a few runs the back-off is over a second.
    assert!(
        b.until(std::time::Duration::from_secs(20), || {
            b.inspect(&id)["RestartCount"].as_u64().unwrap_or(0) >= 4
        }),
        "the restart policy never ran it again"
    );
    b.text(&["stop", &id]);
    assert_eq!(b.status(&id), "exited", "when stop returns");
    let count = b.inspect(&id)["RestartCount"].as_u64();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(b.status(&id), "exited", "it started again");
    assert_eq!(b.inspect(&id)["RestartCount"].as_u64(), count);
}

/// Each hierarchy's line of /proc/PID/cgroup, as `(controllers, path)`.
fn cgroup_lines(pid: i64) -> Vec<(String, String)> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, group) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers.to_string(), group.to_string()))
        })
        .collect()
}

/// The container's init and its command, from the host.
fn init_and_command(b: &Berth, id: &str) -> (i64, i64) {
    let init = b.state(id)["pid"].as_i64().unwrap_or(0);
    let mut child = 0;
    assert!(
        b.until(Duration::from_secs(10), || {
            let path = format!("/proc/{init}/task/{init}/children");
            child = std::fs::read_to_string(path)
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            child != 0
        }),
        "the init of {id} started no command"
    );
    (init, child)
}

/// The container's processes enter its group on every hierarchy berth
/// limits (the first process moves itself on cgroup v1, before anything
/// else), and so does an exec'd one: inside, its cgroup namespace's root is
/// the container's group.
#[test]
fn a_containers_processes_are_in_its_cgroup_on_every_hierarchy() {
    let b = Berth::new("cgroup-entry");
    let id = b.detached(&["--memory", "64m", "--pids-limit", "50"], &["sleep", "60"]);
    let (init, command) = init_and_command(&b, &id);
    let group = format!("/berth/{id}");
    let unified = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.contains("memory"));
    for pid in [init, command] {
        let lines = cgroup_lines(pid);
        let wanted: &[&str] = if unified {
            &[""]
        } else {
            &["memory", "pids", "freezer"]
        };
        for controller in wanted {
            let line = lines
                .iter()
                .find(|(c, _)| c.split(',').any(|c| c == *controller) || c == controller)
                .unwrap_or_else(|| panic!("no {controller:?} line for {pid}: {lines:?}"));
            assert_eq!(line.1, group, "{controller:?} of process {pid}");
        }
    }
    let out = b.text(&["exec", &id, "cat", "/proc/self/cgroup"]);
    for l in out
        .lines()
        .filter(|l| l.contains("memory") || l.contains("pids"))
    {
        assert!(
            l.ends_with(":/"),
            "an exec'd process outside the container's group: {out}"
        );
    }
    if !unified {
        let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{group}/cgroup.procs"))
            .unwrap_or_default();
        assert_eq!(procs.lines().count(), 2, "init and sleep only: {procs}");
    }
}

/// Where cgroup v2 is mounted on this host, if anywhere.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts.lines().find_map(|l| {
        let (fields, fs) = l.split_once(" - ")?;
        fs.starts_with("cgroup2 ")
            .then(|| {
                fields
                    .split_whitespace()
                    .nth(4)
                    .map(std::path::PathBuf::from)
            })
            .flatten()
    })
}

/// On cgroup v2 the container's first process is born in its group
/// (clone3 with CLONE_INTO_CGROUP): the shim never moves it, and the group
/// goes with the container. Run on this host's v2 mount, which holds no
/// controllers beside the v1 hierarchies, so no limit is set.
#[test]
fn on_cgroup_v2_the_first_process_is_born_in_its_group() {
    let Some(mount) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup v2 mount on this host");
        return;
    };
    let b = Berth::new("cgroup-v2");
    let root = mount.display().to_string();
    let env = [("BERTH_CGROUP_ROOT", root.as_str()), ("RUST_LOG", "debug")];
    let rootfs = crate::support::rootfs().display().to_string();
    let run = |args: &[&str]| {
        let out = b.cmd_with(std::path::Path::new("."), &env, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let id = run(&["run", "-d", "--rootfs", &rootfs, "sleep", "60"]);
    let (init, command) = init_and_command(&b, &id);
    for pid in [init, command] {
        assert_eq!(
            cgroup_lines(pid)
                .iter()
                .find(|(c, _)| c.is_empty())
                .map(|l| l.1.clone()),
            Some(format!("/berth/{id}")),
            "the v2 group of process {pid}"
        );
    }
    let log = std::fs::read_to_string(b.root.join("run/containers").join(&id).join("shim.log"))
        .unwrap_or_default();
    assert!(
        !log.contains("clone3 into the cgroup"),
        "the child was not born in its group: {log}"
    );
    run(&["rm", "-f", &id]);
    let dir = mount.join("berth").join(&id);
    assert!(
        b.until(Duration::from_secs(10), || !dir.exists()),
        "{} is left",
        dir.display()
    );
}

/// The /etc files beside a container's record are written without a
/// flush, their texts kept in the record: what a power loss leaves of them
/// (empty files) is made again at the next start, while a file the
/// container changed stays as it is.
#[test]
fn etc_files_a_power_loss_emptied_are_made_again_at_start() {
    let b = Berth::new("etc-restore");
    let (code, out, err) = b.run(
        &["--name", "etcer", "-h", "etchost", "--add-host", "db:10.1.2.3"],
        &["sh", "-c", "grep -c extra /etc/hosts; echo '10.9.9.9 extra' >> /etc/hosts; cat /etc/hostname; grep -c nameserver /etc/resolv.conf"],
    );
    assert_eq!(code, 0, "{err}");
    let id = b.inspect("etcer")["Id"].as_str().unwrap_or("").to_string();
    let dir = b.container_dir(&id);
    let resolv = std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default();
    assert_eq!(
        out,
        format!("0\netchost\n{}\n", resolv.matches("nameserver").count()),
        "first run"
    );
    for f in ["hostname", "resolv.conf"] {
        std::fs::write(dir.join(f), "").unwrap_or_else(|e| panic!("{e}"));
    }
    let again = b.text(&["start", "-a", "etcer"]);
    assert_eq!(
        again,
        format!("1\netchost\n{}\n", resolv.matches("nameserver").count()),
        "hostname and resolv.conf made again; the changed hosts kept"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hostname")).unwrap_or_default(),
        "etchost\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default(),
        resolv
    );
    let hosts = std::fs::read_to_string(dir.join("hosts")).unwrap_or_default();
    assert!(
        hosts.contains("10.1.2.3\tdb") && hosts.contains("10.9.9.9 extra"),
        "{hosts}"
    );
}

/// The processes whose command line ends with `argv` (all of it when
/// `whole`).
fn processes_running(argv: &[&str], whole: bool) -> usize {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let matches = |c: Vec<u8>| {
        if whole {
            c == want
        } else {
            c.ends_with(&want)
        }
    };
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(matches))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn starts_at_once_start_a_container_once() {
    let b = Berth::new("starts");
    let rootfs = crate::support::rootfs().display().to_string();
    // A duration no other run of this test shares picks its processes out.
    let secs = (100_000 + std::process::id()).to_string();
    let id = b.text(&[
        "create",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sleep",
        &secs,
    ]);
    let id = id.trim();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let starts: Vec<_> = (0..4).map(|_| s.spawn(|| b.cmd(&["start", id]))).collect();
        starts
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("start thread")))
            .collect()
    });
    for out in &outs {
        assert_stdout(out, &format!("{id}\n"));
    }
    assert_eq!(b.status(id), "running");
    let shim = ["__berth_shim", id, "bg"];
    assert_eq!(processes_running(&shim, false), 1, "shims of {id}");
    let command = ["sleep", secs.as_str()];
    assert_eq!(processes_running(&command, true), 1, "container processes");
    // A start of the running container is Docker's: nothing to do, success.
    assert_stdout(&b.cmd(&["start", id]), &format!("{id}\n"));
    b.text(&["rm", "-f", id]);
    assert_eq!(processes_running(&command, true), 0);
}

/// Entries of `dir` (none when it is missing).
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_run_rm_container_is_gone_at_exit_and_its_files_and_volume_behind() {
    let b = Berth::new("rm-behind");
    let volumes = b.root.join("volumes");
    let before = entries(&volumes);
    let (code, out, err) = b.run(
        &["--rm", "--name", "brief", "-v", "/scratch"],
        &["sh", "-c", "echo kept > /scratch/x; cat /scratch/x"],
    );
    assert_eq!((code, out.as_str()), (0, "kept\n"), "{err}");
    // Gone for every reader once `run` returns: unlisted, its name free.
    assert_eq!(b.text(&["ps", "-aq"]), "");
    let rootfs = crate::support::rootfs().display().to_string();
    let again = b.text(&["create", "--name", "brief", "--rootfs", &rootfs, "true"]);
    b.text(&["rm", again.trim()]);
    // Its directories and its anonymous volume are deleted behind it.
    let dirs = [b.root.join("containers"), b.root.join("run/containers")];
    let left = || {
        dirs.iter()
            .flat_map(|d| entries(d))
            .filter(|e| e.starts_with(".removed-"))
            .count()
    };
    assert!(
        b.until(Duration::from_secs(10), || left() == 0
            && entries(&volumes) == before),
        "left behind: {:?} {:?}",
        dirs.iter().map(|d| entries(d)).collect::<Vec<_>>(),
        entries(&volumes)
    );
    // Its cgroup goes behind it too, from every hierarchy.
    let events = std::fs::read_to_string(b.root.join("run/events.jsonl")).unwrap_or_default();
    let id = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["Action"] == "destroy" && e["Attributes"]["name"] == "brief")
        .and_then(|e| e["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no destroy event of brief: {events}"));
    let groups: Vec<_> = ["memory", "pids", "freezer", "cpuacct", "cpu", "cpuset", ""]
        .iter()
        .map(|c| {
            std::path::Path::new("/sys/fs/cgroup")
                .join(c)
                .join("berth")
                .join(&id)
        })
        .collect();
    assert!(
        b.until(Duration::from_secs(10), || groups
            .iter()
            .all(|g| !g.exists())),
        "left behind: {:?}",
        groups.iter().filter(|g| g.exists()).collect::<Vec<_>>()
    );
    let log = std::fs::read_to_string(b.root.join("run/containers/sweep.log")).unwrap_or_default();
    assert!(!log.contains("ERROR"), "{log}");
}

/// The deleter behind a `run --rm` container holds none of the command's
/// output: a caller reading `run`'s stdout and stderr to their end (as a
/// shell's `$(...)` does) is done while the deletion still goes on.
#[test]
fn the_deletion_behind_run_rm_keeps_no_caller_waiting() {
    let b = Berth::new("rm-detached");
    // Enough files with data that deleting them takes a while.
    let (code, out, err) = b.run(
        &["--rm", "--name", "many"],
        &[
            "sh",
            "-c",
            "mkdir /many; for i in $(seq 3000); do echo x > /many/$i; done; echo made",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "made\n"), "{err}");
    let retired = || {
        entries(&b.root.join("containers"))
            .into_iter()
            .filter(|e| e.starts_with(".removed-"))
            .count()
    };
    assert_eq!(
        retired(),
        1,
        "run's output ended before its files were deleted"
    );
    assert!(
        b.until(Duration::from_secs(30), || retired() == 0),
        "the deletion behind it finished"
    );
    let log = std::fs::read_to_string(b.root.join("run/containers/sweep.log")).unwrap_or_default();
    assert!(!log.contains("ERROR"), "{log}");
}

/// What a started container left in its own upper directory, as relative
/// paths (sorted).
fn upper_entries(b: &Berth, id: &str) -> Vec<String> {
    fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), &format!("{name}/"), out);
            }
            out.push(name);
        }
    }
    let mut out = Vec::new();
    walk(
        &b.root.join("containers").join(id).join("upper"),
        "",
        &mut out,
    );
    out.sort();
    out
}

#[test]
fn mount_points_come_from_the_shared_layer_not_the_containers_upper() {
    let b = Berth::new("mount-points");
    // The fixture image has /etc but no /proc, /dev, /sys or /etc/hosts:
    // the container still sees them, mounted, and its upper stays empty.
    let id = b.detached(&["--hostname", "mp"], &["sleep", "100"]);
    let out = b.text(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /etc/hostname; grep -c mp /etc/hosts; test -r /etc/resolv.conf && echo resolv; \
         test -e /proc/self/status && echo proc; test -c /dev/null && echo dev; ls /sys | grep -c . >/dev/null && echo sys",
    ]);
    assert_eq!(out, "mp\n1\nresolv\nproc\ndev\nsys\n");
    assert_eq!(upper_entries(&b, &id), Vec::<String>::new());
    let layer = b.root.join("mount-points");
    assert!(
        layer.join("etc/hosts").is_file(),
        "no shared layer at {}",
        layer.display()
    );
    // What the container writes goes to its upper as before; the layer
    // is not touched.
    b.text(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo x > /etc/new; mkdir -p /dev/shm/x",
    ]);
    assert_eq!(
        upper_entries(&b, &id),
        vec!["etc".to_string(), "etc/new".to_string()]
    );
    assert!(!layer.join("etc/new").exists());
    // A layer removed by hand is made again when the container restarts.
    b.text(&["stop", "-t", "0", &id]);
    std::fs::remove_dir_all(&layer).unwrap_or_else(|e| panic!("{e}"));
    b.text(&["start", &id]);
    assert_eq!(b.text(&["exec", &id, "cat", "/etc/hostname"]), "mp\n");
    assert!(layer.join("etc/hosts").is_file());
    assert_eq!(
        upper_entries(&b, &id),
        vec!["etc".to_string(), "etc/new".to_string()]
    );
    b.text(&["rm", "-f", &id]);

    // An image whose /etc/resolv.conf is a symlink is not covered: the
    // link stays what the image made it, and the container makes its
    // mount points itself.
    let odd = b.root.join("odd-rootfs");
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            &crate::support::rootfs().display().to_string(),
            &odd.display().to_string(),
        ])
        .status()
        .unwrap_or_else(|e| panic!("cp: {e}"));
    assert!(status.success());
    std::os::unix::fs::symlink("../tmp/resolv", odd.join("etc/resolv.conf"))
        .unwrap_or_else(|e| panic!("{e}"));
    let odd_s = odd.display().to_string();
    let out = b.cmd(&["run", "-d", "--rootfs", &odd_s, "sleep", "100"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(b.root.join("containers").join(&id).join("berth.json"))
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(cfg.get("mount_points").is_none(), "{cfg}");
    assert_eq!(b.text(&["exec", &id, "cat", "/proc/self/comm"]), "cat\n");
    assert!(upper_entries(&b, &id).contains(&"proc".to_string()));
    b.text(&["rm", "-f", &id]);
}

/// On an ext4 filesystem without a journal, which will not reuse an inode
/// for a minute after its deletion, berth has the filesystem spread the
/// container directories over its block groups; a journaled ext4 is left
/// as it is. Both are made on loop devices inside the test's own mount
/// namespace.
#[test]
fn container_directories_spread_on_ext4_without_a_journal() {
    let b = Berth::new("spread");
    let rootfs = crate::support::rootfs().display().to_string();
    let script = r#"
set -e
mk() { # name, mkfs options...
  n=$1; shift
  truncate -s 64M "$T/$n.img"
  mkfs.ext4 -q -F -O ^flex_bg -b 1024 -g 8192 "$@" "$T/$n.img"
  mkdir -p "$T/$n"
  mount -o loop "$T/$n.img" "$T/$n"
}
mk plain -O ^has_journal
mk journaled
per_group=$(dumpe2fs -h "$T/plain.img" 2>/dev/null | awk -F: '/^Inodes per group/{print $2+0}')
for n in plain journaled; do
  export BERTH_ROOT="$T/$n/state"
  "$BERTH" run --rm --rootfs "$ROOTFS" true
  for i in 1 2 3 4 5 6; do "$BERTH" create --name "c$i" --rootfs "$ROOTFS" true >/dev/null; done
  echo "$n flags $(lsattr -d "$BERTH_ROOT/containers" | cut -d' ' -f1) $(lsattr -d "$BERTH_ROOT/run/containers" | cut -d' ' -f1)"
  groups=$(for d in "$BERTH_ROOT"/containers/*/; do echo $(( $(stat -c %i "$d") / per_group )); done | sort -u | wc -l)
  echo "$n groups $groups"
  "$BERTH" rm c1 c2 c3 c4 c5 c6 >/dev/null
done
"#;
    let tmp = b.root.join("fs");
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--net", "--", "sh", "-c", script])
        .env("T", &tmp)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("ROOTFS", &rootfs)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running the script: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key:?} line in {text}"))
            .split(' ')
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let plain = line("plain flags");
    let (records, run) = plain.split_once(' ').unwrap_or((&plain, ""));
    assert!(
        records.contains('T'),
        "the parent of the record directories is a top directory: {plain}"
    );
    assert!(
        !run.contains('T'),
        "the run directories stay where ext4 puts them: {plain}"
    );
    let journaled = line("journaled flags");
    assert!(
        journaled.split(' ').all(|f| !f.contains('T')),
        "a journaled ext4 is left as it is: {journaled}"
    );
    let spread: usize = line("plain groups").parse().unwrap_or(0);
    assert!(
        spread > 1,
        "six container directories in more than one block group: {text}"
    );
}
