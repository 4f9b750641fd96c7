//! Helpers for tests that run the real `sim` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

pub struct Run {
    pub output: Output,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn results(&self) -> Value {
        let text = std::fs::read_to_string(self.out.join("results.json"))
            .unwrap_or_else(|e| panic!("no results.json ({e}); stderr: {}", self.stderr()));
        serde_json::from_str(&text).unwrap()
    }

    /// Every trial of one strategy.
    pub fn trials(&self, strategy: &str) -> Vec<Value> {
        let results = self.results();
        let runs = results["runs"].as_array().unwrap();
        let run = runs
            .iter()
            .find(|r| r["strategy"] == strategy)
            .unwrap_or_else(|| panic!("no run of {strategy}"));
        run["trials"].as_array().unwrap().clone()
    }
}

pub fn sim() -> Command {
    Command::cargo_bin("sim").unwrap()
}

/// Writes `scenario` into a fresh folder and runs `sim run` on it with `args`.
pub fn run_scenario(scenario: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    run_file(dir, &file, args)
}

/// Writes `scenario` into a fresh folder and runs `sim run` on it with `env` set.
pub fn sim_with_env(scenario: &str, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.path().join("out");
    let output = sim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run { output, out, _dir: dir }
}

/// Runs `sim run` on a scenario that ships in scenarios/.
pub fn run_shipped(name: &str, args: &[&str]) -> Run {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name);
    run_file(tempfile::tempdir().unwrap(), &file, args)
}

/// Runs `sim run FILE --out DIR/out ARGS`.
fn run_file(dir: tempfile::TempDir, file: &Path, args: &[&str]) -> Run {
    let out = dir.path().join("out");
    let output = sim()
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    Run { output, out, _dir: dir }
}

pub fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The kinds of a trial's faults, in the order results.json lists them.
pub fn fault_kinds(trial: &Value) -> Vec<String> {
    trial["faults"]
        .as_array()
        .unwrap_or_else(|| panic!("no faults list: {trial}"))
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts that a run failed with exit status 2, its message saying each of `said`, and
/// left no process holding its output folder.
pub fn assert_failed_leaving_nothing(run: &Run, said: &[&str]) {
    assert_eq!(run.code(), 2, "{}", run.stderr());
    for s in said {
        assert!(run.stderr().contains(s), "no {s:?} in: {}", run.stderr());
    }
    assert!(
        processes_holding(&run.out).is_empty(),
        "left running: {:?}",
        processes_holding(&run.out)
    );
}

/// The processes whose command line mentions `needle` (workers name their plan's path, a
/// store's server its socket folder), each as `pid: command line`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(format!("{pid}: {text}"));
        }
    }
    found
}

/// `sim run SCENARIO --out DIR/out` started in the background, its output thrown away.
pub fn run_in_background(scenario: &Path, dir: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(dir.join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether `done` holds within `limit`, asked every 20 ms.
pub fn wait_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}

/// Calls `f` on every item, on `threads` threads at once: for tests that run many scenarios
/// whose trials mostly wait (race windows, servers starting), so that they overlap. A panic
/// in any call fails the test once the others are done.
pub fn each_in_parallel<T: Send>(items: Vec<T>, threads: usize, f: impl Fn(T) + Sync) {
    let queue = std::sync::Mutex::new(items.into_iter());
    let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).next();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(item) = next() {
                    f(item);
                }
            });
        }
    });
}

/// The processes that hold a file under `dir` open (a server's log): those sim started there.
pub fn processes_holding(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target: PathBuf| target.starts_with(dir));
        if holds {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

/// Every Unix socket file under `dir`, at any depth.
pub fn sockets_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => found.extend(sockets_under(&path)),
            Ok(t) if t.is_socket() => found.push(path),
            _ => {}
        }
    }
    found
}

/// A run of many trials of `store` (`"redis"` or `"postgres"`) on a primary with two
/// replicas, each failed over (so that each starts its replicas afresh), once it has begun
/// its second trial, with at least `servers` processes holding a log of the output folder
/// open; the runner and the output folder. A trial takes about 2 s here, but one whose
/// failover stalls on a machine loaded by the other tests runs to its deadline (20 s), so
/// the wait for the second allows for that.
pub fn long_replicated_run_in_its_second_trial(
    dir: &Path,
    store: &str,
    servers: usize,
) -> (std::process::Child, PathBuf) {
    let scenario = dir.join("long.toml");
    std::fs::write(
        &scenario,
        format!(
            "trials = 1000\ndeadline_ms = 20000\nstrategy = \"atomic\"\n[stock]\nstore = \"{store}\"\ninitial = 100000\n\
             replicas = 2\n[buyers]\ncount = 4\nattempts = 200\nhold_us = 1000\n[faults]\nfailover = true\nlag_ms = 50\n"
        ),
    )
    .unwrap();
    let sim = run_in_background(&scenario, dir);
    let out = dir.join("out");
    assert!(
        wait_until(std::time::Duration::from_secs(120), || out
            .join("trials/atomic/001/plan.json")
            .exists()),
        "the second trial never began"
    );
    assert!(
        processes_holding(&out).len() >= servers,
        "{:?}",
        processes_holding(&out)
    );
    (sim, out)
}

/// A Redis of the test's own, as a user's server would be, on a Unix socket at `socket`
/// with `extra` settings, started and waited for; killed when dropped.
pub fn own_redis(socket: &Path, extra: &[&str]) -> KilledOnDrop {
    let server = KilledOnDrop(
        std::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(std::time::Duration::from_secs(30), || socket.exists()),
        "the test's own redis did not start"
    );
    server
}

/// A server the test started, ended however the test ends.
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
