//! The stores that are real servers, run for real: a throwaway PostgreSQL per run, the user's
//! own server through `[stock] url`, and what is left after a run ends, is interrupted or is
//! killed outright. A machine without the server's binaries fails these tests, naming the
//! package: scripts/test installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{own_redis, processes_mentioning, run_scenario, sim, u, wait_until};

/// The folder of PostgreSQL's server binaries, or a failure that says what to install.
fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): install the Debian \
             package postgresql, or run scripts/test, which does"
        )
    })
}

/// Runs `sim run FILE --out OUT` to its end; the runner's pid (which names its servers'
/// socket folders) and what it printed.
fn run_noting_pid(file: &Path, out: &Path) -> (u32, std::process::Output) {
    let child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child.id(), child.wait_with_output().unwrap())
}

/// The socket folders under /tmp of the runner with this pid.
fn socket_dirs_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("sim-pg.{pid}.")) || n.starts_with(&format!("sim-redis.{pid}.")))
        .collect()
}

/// Fails unless the throwaway server of the runner with this pid (`short`: "pg" or
/// "redis") is gone, and its socket folder with it.
fn assert_server_gone(short: &str, pid: u32) {
    let running = processes_mentioning(&format!("sim-{short}.{pid}."));
    assert!(running.is_empty(), "the server outlived the run: {running:?}");
    assert!(
        socket_dirs_of(pid).is_empty(),
        "socket folder left: {:?}",
        socket_dirs_of(pid)
    );
}

/// Fails, naming the package, where `redis-server` is not installed.
fn require_redis() {
    assert!(
        Path::new("/usr/bin/redis-server").is_file(),
        "redis-server is not installed: install the Debian package redis-server, or run scripts/test, which does"
    );
}

/// A folder the `postgres` user can reach when the tests run as root (tempfile's are private).
fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_throwaway_postgres_serves_the_run_and_is_gone_after_it() {
    postgres_bin();
    let dir = open_tempdir();
    let file = dir.path().join("pg.toml");
    std::fs::write(
        &file,
        "trials = 2\nstrategy = [\"none\", \"atomic\", \"row-lock\"]\n[stock]\nstore = \"postgres\"\ninitial = 10\n\
         [buyers]\ncount = 20\nhold_us = 3000\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // While it runs, its server's data folder is in the output folder.
    assert!(
        wait_until(Duration::from_secs(60), || out
            .join("server/postgres/PG_VERSION")
            .exists()
            || child.try_wait().unwrap().is_some()),
        "no data folder appeared"
    );
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let trials = |name: &str| {
        results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["strategy"] == name)
            .unwrap()["trials"]
            .as_array()
            .unwrap()
            .clone()
    };
    for t in trials("none") {
        assert!(u(&t["oversold"]) > 0, "20 buyers reading the same row: {t}");
    }
    for name in ["atomic", "row-lock"] {
        for t in trials(name) {
            assert_eq!(t["verdict"], "safe", "{name}: {t}");
            assert_eq!(u(&t["sold"]), 10, "{name}: {t}");
            assert_eq!(t["final_stock"], 0, "{name}: {t}");
            // The store's own record holds every sale the buyers were told of.
            let sales = std::fs::read_to_string(out.join(t["dir"].as_str().unwrap()).join("sales.jsonl")).unwrap();
            assert_eq!(sales.lines().count(), 10, "{name}: {sales}");
        }
    }
    assert!(
        processes_mentioning(&out.to_string_lossy()).is_empty(),
        "the server outlived the run"
    );
    assert_server_gone("pg", pid);
    assert!(!out.join("server/postgres").exists(), "the data folder was not removed");
}

/// A run of many long trials on a throwaway PostgreSQL, its output folder reachable by the
/// `postgres` user, once it has begun its second trial; and that output folder.
fn long_postgres_run_in_its_second_trial(dir: &Path) -> (Child, PathBuf) {
    let scenario = dir.join("long.toml");
    std::fs::write(
        &scenario,
        "trials = 1000\nstrategy = \"row-lock\"\n[stock]\nstore = \"postgres\"\ninitial = 100\n[buyers]\ncount = 10\n\
         hold_us = 20000\n",
    )
    .unwrap();
    let sim = common::run_in_background(&scenario, dir);
    let out = dir.join("out");
    assert!(
        wait_until(Duration::from_secs(60), || out
            .join("trials/row-lock/001/plan.json")
            .exists()),
        "the second trial never began"
    );
    (sim, out)
}

#[test]
fn ctrl_c_stops_the_throwaway_postgres_and_removes_its_folders() {
    postgres_bin();
    let dir = open_tempdir();
    let (mut sim, out) = long_postgres_run_in_its_second_trial(dir.path());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    assert_eq!(sim.wait().unwrap().code(), Some(130));
    assert!(processes_mentioning(&out.to_string_lossy()).is_empty(), "left running");
    assert_server_gone("pg", sim.id());
    assert!(!out.join("server/postgres").exists(), "the data folder was not removed");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["interrupted"], true);
}

#[test]
fn a_runner_killed_outright_takes_its_postgres_along_and_the_next_run_sweeps_its_socket_folder() {
    postgres_bin();
    let dir = open_tempdir();
    let (mut sim, out) = long_postgres_run_in_its_second_trial(dir.path());
    sim.kill().unwrap(); // SIGKILL: no clean-up of sim's runs
    sim.wait().unwrap();
    // The kernel sends the server its stop signal, and it shuts down by itself.
    assert!(
        wait_until(Duration::from_secs(30), || processes_mentioning(&out.to_string_lossy())
            .is_empty()),
        "outlived the runner: {:?}",
        processes_mentioning(&out.to_string_lossy())
    );
    let next = run_scenario(
        "trials = 1\nstrategy = \"atomic\"\n[stock]\nstore = \"postgres\"\n[buyers]\ncount = 2\nhold_us = 0\n",
        &[],
    );
    assert_eq!(next.code(), 0, "{}", next.stderr());
    assert!(
        socket_dirs_of(sim.id()).is_empty(),
        "not swept: {:?}",
        socket_dirs_of(sim.id())
    );
}

#[test]
fn a_throwaway_redis_serves_the_run_and_is_gone_after_it() {
    require_redis();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis.toml");
    std::fs::write(
        &file,
        "trials = 2\nstrategy = [\"none\", \"atomic\", \"optimistic\", \"lease\"]\n[stock]\nstore = \"redis\"\n\
         initial = 10\n[buyers]\ncount = 20\nhold_us = 3000\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (pid, output) = run_noting_pid(&file, &out);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    for run in results["runs"].as_array().unwrap() {
        let name = run["strategy"].as_str().unwrap();
        for t in run["trials"].as_array().unwrap() {
            let sales = std::fs::read_to_string(out.join(t["dir"].as_str().unwrap()).join("sales.jsonl")).unwrap();
            // The store's own record holds every sale the buyers were told of.
            assert_eq!(sales.lines().count() as u64, u(&t["sold"]), "{name}: {sales}");
            match name {
                "none" => assert!(u(&t["oversold"]) > 0, "20 buyers reading the same key: {t}"),
                _ => {
                    assert_eq!(t["verdict"], "safe", "{name}: {t}");
                    assert_eq!(t["final_stock"], 0, "{name}: {t}");
                }
            }
        }
    }
    assert_server_gone("redis", pid);
}

#[test]
fn a_missing_redis_server_names_the_package_and_the_url_alternative() {
    let run = run_scenario_with_env(
        "[stock]\nstore = \"redis\"\n",
        ("SIM_REDIS_SERVER", "/nonexistent/redis-server"),
    );
    assert_eq!(run.0, Some(2), "{}", run.1);
    for needed in ["redis-server", "url", "stock.store"] {
        assert!(run.1.contains(needed), "no {needed:?} in: {}", run.1);
    }
}

#[test]
fn an_unreachable_redis_url_is_refused_without_its_password() {
    let run = run_scenario(
        "[stock]\nstore = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:1/0\"\n",
        &[],
    );
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{stderr}");
    assert!(
        stderr.contains("stock.url") && stderr.contains("redis://:***@127.0.0.1:1/0"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Runs `sim run` on `scenario` with one more environment variable: its exit code and
/// standard error.
fn run_scenario_with_env(scenario: &str, (key, value): (&str, &str)) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let output = sim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env(key, value)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn missing_server_binaries_name_the_package_and_the_url_alternative() {
    let empty = tempfile::tempdir().unwrap();
    let (code, stderr) = run_scenario_with_env(
        "[stock]\nstore = \"postgres\"\n",
        ("SIM_POSTGRES_BIN", &empty.path().to_string_lossy()),
    );
    assert_eq!(code, Some(2), "{stderr}");
    for needed in ["postgresql", "url", "stock.store"] {
        assert!(stderr.contains(needed), "no {needed:?} in: {stderr}");
    }
}

#[test]
fn a_url_of_another_store_is_refused_naming_the_field() {
    for (store, url) in [
        ("postgres", "redis://localhost"),
        ("redis", "postgres://localhost"),
        ("file", "postgres://x"),
    ] {
        let run = run_scenario(&format!("[stock]\nstore = \"{store}\"\nurl = \"{url}\"\n"), &[]);
        assert_eq!(run.code(), 2, "{store} {url}: {}", run.stderr());
        assert!(run.stderr().contains("stock.url"), "{}", run.stderr());
    }
}

#[test]
fn an_unreachable_url_is_refused_with_the_servers_error_and_no_password() {
    let run = run_scenario(
        "[stock]\nstore = \"postgres\"\nurl = \"postgres://buyer:hunter2@127.0.0.1:1/shop\"\n",
        &[],
    );
    let stderr = run.stderr();
    assert_eq!(run.code(), 2, "{stderr}");
    assert!(stderr.contains("stock.url"), "{stderr}");
    assert!(stderr.contains("postgres://buyer:***@127.0.0.1:1/shop"), "{stderr}");
    assert!(stderr.contains("refused"), "the server's error: {stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!run.out.join("trials").exists(), "a trial ran");
}

/// A PostgreSQL server of "the user's own", on a Unix socket, stopped when dropped.
struct OwnServer {
    process: Child,
    socket: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl OwnServer {
    fn start(max_connections: u32) -> OwnServer {
        let bin = postgres_bin();
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg("postgres").output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a postgres user")
        };
        let ids = root.then(|| (id("-u"), id("-g")));
        let as_postgres = |program: &Path| {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(program);
            if let Some((uid, gid)) = ids {
                command.uid(uid).gid(gid);
            }
            command.current_dir("/").stdout(Stdio::null()).stderr(Stdio::null());
            command
        };
        let open = |dir: &Path| {
            if let Some((uid, gid)) = ids {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
            }
        };
        let data = open_tempdir();
        let socket = open_tempdir();
        open(data.path());
        open(socket.path());
        let status = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(data.path())
            .args(["-A", "trust", "-N", "--no-locale", "-U", "owner"])
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let process = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(data.path())
            .arg("-k")
            .arg(socket.path())
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("max_connections={max_connections}"))
            .spawn()
            .unwrap();
        let server = OwnServer {
            process,
            socket,
            _data: data,
        };
        assert!(
            wait_until(Duration::from_secs(60), || server.psql("SELECT 1").is_some()),
            "the test's own server did not start"
        );
        server
    }

    /// The url, with a password that trust authentication ignores and sim must not print.
    fn url(&self) -> String {
        let host = self.socket.path().to_string_lossy().replace('/', "%2F");
        format!("postgresql://owner:hunter2@{host}/postgres")
    }

    fn psql(&self, sql: &str) -> Option<String> {
        let output = Command::new("psql")
            .arg("-h")
            .arg(self.socket.path())
            .args(["-U", "owner", "-d", "postgres", "-Atc", sql])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // SAFETY: signalling our own child: fast shutdown.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGINT) };
        let _ = self.process.wait();
    }
}

#[test]
fn on_the_users_own_server_sim_keeps_to_its_tables_and_refuses_more_buyers_than_connections() {
    let server = OwnServer::start(20);
    let url = server.url();
    server
        .psql("CREATE TABLE shop (n int); INSERT INTO shop VALUES (7)")
        .unwrap();

    let too_many = run_scenario(
        &format!("[stock]\nstore = \"postgres\"\nurl = \"{url}\"\n[buyers]\ncount = 30\n"),
        &[],
    );
    let stderr = too_many.stderr();
    assert_eq!(too_many.code(), 2, "{stderr}");
    // 30 buyers and sim's own three connections; 20 less the 3 reserved for superusers.
    assert!(stderr.contains("33") && stderr.contains("17"), "{stderr}");
    assert!(stderr.contains("buyers.count"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let run = run_scenario(
        &format!(
            "trials = 2\nstrategy = [\"atomic\", \"transaction\"]\n[stock]\nstore = \"postgres\"\nurl = \"{url}\"\n\
             initial = 5\n[buyers]\ncount = 8\nhold_us = 1000\n[transaction]\nisolation = \"serializable\"\n"
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for name in ["atomic", "transaction"] {
        for t in run.trials(name) {
            assert_eq!(t["verdict"], "safe", "{t}");
            assert_eq!(u(&t["sold"]), 5, "{t}");
        }
    }
    // Nothing of sim's is left on the server, and what was there is untouched.
    assert_eq!(
        server
            .psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'sim\\_%'")
            .as_deref(),
        Some("0")
    );
    assert_eq!(server.psql("SELECT n FROM shop").as_deref(), Some("7"));
    // The password was never written down.
    for entry in walk(&run.out) {
        let text = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("hunter2"),
            "{} holds the password",
            entry.display()
        );
    }
    assert!(!run.stdout().contains("hunter2") && !run.stderr().contains("hunter2"));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_buyer_killed_or_paused_inside_its_transaction_leaves_the_sale_safe() {
    postgres_bin();
    let run = run_scenario(
        "trials = 2\nstrategy = [\"row-lock\", \"advisory-lock\", \"transaction\"]\n[stock]\nstore = \"postgres\"\n\
         initial = 40\n[buyers]\ncount = 10\nattempts = 3\nhold_us = 1000\n[transaction]\nisolation = \"serializable\"\n\
         [faults]\nkill_buyers = 2\nstop_buyers = 1\nstop_ms = 200\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for name in ["row-lock", "advisory-lock", "transaction"] {
        for t in run.trials(name) {
            assert_eq!(t["verdict"], "safe", "{name}: {t}");
            // Killed between the read and the write: the server rolled their transactions back.
            assert_eq!(u(&t["indeterminate"]), 2, "{name}: {t}");
            assert_eq!(u(&t["final_stock"]), 40 - u(&t["sold"]), "{name}: {t}");
        }
    }
}

#[test]
fn a_buyer_paused_while_it_holds_the_row_is_cut_off_by_the_server_and_the_others_go_on() {
    postgres_bin();
    // The server ends a session idle in its transaction after a quarter of the deadline (2 s
    // here); the paused buyer is resumed after 5 s, and tries again on a new connection.
    let run = run_scenario(
        "trials = 1\nstrategy = \"row-lock\"\ndeadline_ms = 8000\n[stock]\nstore = \"postgres\"\ninitial = 10\n\
         [buyers]\ncount = 5\nhold_us = 1000\n[faults]\nstop_buyers = 1\nstop_ms = 5000\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let t = &run.trials("row-lock")[0];
    assert_eq!(t["verdict"], "safe", "{t}");
    assert_eq!(u(&t["sold"]), 5, "{t}");
    let paused = t["faults"][0]["process"]
        .as_str()
        .unwrap()
        .strip_prefix("buyer ")
        .unwrap()
        .to_string();
    // It read the stock and locked its row, then stopped: without the server's timeout each
    // other buyer would wait for it, and its sale would come before theirs. It comes last.
    let sales = std::fs::read_to_string(run.out.join(t["dir"].as_str().unwrap()).join("sales.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(sales.lines().last().unwrap()).unwrap();
    assert_eq!(last["index"].to_string(), paused, "{sales}");
    assert_eq!(last["ticket"], 6, "{sales}");
}

#[test]
fn a_store_killed_mid_trial_crashes_the_trial_and_is_started_again_for_the_next() {
    postgres_bin();
    require_redis();
    let segments_before = unattached_segments();
    for (store, strategy) in [("postgres", "row-lock"), ("redis", "optimistic")] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kill.toml");
        std::fs::write(
            &file,
            format!(
                "trials = 3\nstrategy = [\"atomic\", \"{strategy}\"]\n[stock]\nstore = \"{store}\"\ninitial = 100\n\
                 [buyers]\ncount = 10\nattempts = 5\nhold_us = 2000\n[faults]\nkill_store = true\n\
                 [expect]\ncrashed = true\n"
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        let (pid, output) = run_noting_pid(&file, &out);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{store}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        for run in results["runs"].as_array().unwrap() {
            for t in run["trials"].as_array().unwrap() {
                // Every trial: its server was killed, and it was started again for the next.
                assert_eq!(t["verdict"], "crashed", "{store}: {t}");
                assert_eq!(t["faults"][0]["kind"], "kill-store", "{store}: {t}");
                // What survived, read from the server started again.
                let sales = std::fs::read_to_string(out.join(t["dir"].as_str().unwrap()).join("sales.jsonl")).unwrap();
                let recorded = sales.lines().count() as u64;
                match store {
                    // Every acknowledged sale was committed to the WAL: the record holds
                    // them, and those whose buyer was cut off before the answer.
                    "postgres" => {
                        assert!(recorded >= u(&t["sold"]), "{t}\n{sales}");
                        assert_eq!(u(&t["final_stock"]), 100 - recorded, "{t}\n{sales}");
                        assert_eq!(u(&t["lost_acknowledged"]), 0, "{t}");
                    }
                    // Without snapshots or an append-only file, a killed Redis forgets
                    // everything: every acknowledged sale is lost.
                    _ => {
                        assert_eq!(recorded, 0, "{t}\n{sales}");
                        assert!(t["final_stock"].is_null(), "{t}");
                        assert_eq!(u(&t["lost_acknowledged"]), u(&t["sold"]), "{t}");
                    }
                }
            }
        }
        assert_server_gone(if store == "postgres" { "pg" } else { "redis" }, pid);
    }
    // A killed PostgreSQL leaves its System V interlock segment; the one started again
    // removes it.
    let left: Vec<String> = unattached_segments()
        .into_iter()
        .filter(|s| !segments_before.contains(s))
        .collect();
    assert!(left.is_empty(), "shared memory left behind: {left:?}");
}

/// The System V shared memory segments that no process is attached to, by id.
fn unattached_segments() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(6) == Some(&"0")).then(|| fields[1].to_string())
        })
        .collect()
}

#[test]
fn kill_store_needs_a_throwaway_server() {
    for stock in [
        "store = \"file\"",
        "store = \"postgres\"\nurl = \"postgres://localhost/shop\"",
    ] {
        let run = run_scenario(&format!("[stock]\n{stock}\n[faults]\nkill_store = true\n"), &[]);
        assert_eq!(run.code(), 2, "{}", run.stderr());
        assert!(run.stderr().contains("faults.kill_store"), "{}", run.stderr());
    }
}

#[test]
fn a_postgres_lease_row_expires_under_a_paused_holder_unless_its_writes_are_fenced() {
    postgres_bin();
    for (fencing, expected) in [(false, "anomalous"), (true, "safe")] {
        let run = run_scenario(
            &format!(
                "trials = 2\nstrategy = \"lease\"\n[stock]\nstore = \"postgres\"\ninitial = 500\n[buyers]\ncount = 10\n\
                 attempts = 20\nhold_us = 1000\n[lock]\nlease_ms = 50\nfencing = {fencing}\n[faults]\nstop_buyers = 2\n\
                 stop_ms = 300\n"
            ),
            &[],
        );
        assert_eq!(run.code(), 0, "{}", run.stderr());
        for t in run.trials("lease") {
            // Paused six lease-lengths while holding it: the lease row was taken over, and
            // the holder's late write lands on a stock that moved on, unless it is fenced.
            match expected {
                "safe" => assert_eq!(t["verdict"], "safe", "{t}"),
                _ => assert_ne!(t["verdict"], "safe", "{t}"),
            }
        }
    }
}

#[test]
fn on_the_users_own_redis_sim_keeps_to_its_keys_and_refuses_more_buyers_than_maxclients() {
    require_redis();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let _server = own_redis(&socket, &["--maxclients", "20", "--requirepass", "hunter2"]);
    let url = format!("redis+unix://{}?pass=hunter2", socket.display());
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&socket)
            .args(["--no-auth-warning", "-a", "hunter2"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    cli(&["SET", "shop", "7"]);

    let too_many = run_scenario(
        &format!("[stock]\nstore = \"redis\"\nurl = \"{url}\"\n[buyers]\ncount = 30\n"),
        &[],
    );
    let stderr = too_many.stderr();
    assert_eq!(too_many.code(), 2, "{stderr}");
    assert!(
        stderr.contains("33") && stderr.contains("20") && stderr.contains("buyers.count"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let run = run_scenario(
        &format!(
            "trials = 2\nstrategy = [\"atomic\", \"optimistic\"]\n[stock]\nstore = \"redis\"\nurl = \"{url}\"\n\
             initial = 5\n[buyers]\ncount = 8\nhold_us = 1000\n"
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("atomic") {
        assert_eq!(u(&t["sold"]), 5, "{t}");
    }
    // Only the shop's own key is left, untouched.
    assert_eq!(cli(&["KEYS", "*"]), "shop");
    assert_eq!(cli(&["GET", "shop"]), "7");
    for entry in walk(&run.out) {
        let text = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("hunter2"),
            "{} holds the password",
            entry.display()
        );
    }
}

#[test]
fn a_redis_record_of_sales_emptied_mid_sale_names_every_acknowledged_sale_it_lost() {
    require_redis();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let _server = own_redis(&socket, &[]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let url = format!("redis+unix://{}", socket.display());
    // Four buyers a sale every 3 ms each: a trial sells for about 200 ms, a soak for 1.5 s.
    // Once the record holds 30 sales, a second client deletes it; the buyers sell on, and
    // the record starts again from the next sale.
    for (what, how_long) in [("trial", "attempts = 60"), ("soak", "duration_ms = 1500")] {
        let file = dir.path().join(format!("{what}.toml"));
        std::fs::write(
            &file,
            format!(
                "strategy = \"atomic\"\n[stock]\nstore = \"redis\"\nurl = \"{url}\"\ninitial = 100000\n\
                 [buyers]\ncount = 4\n{how_long}\nhold_us = 3000\n"
            ),
        )
        .unwrap();
        let mut run = common::run_in_background(&file, &dir.path().join(what));
        let out = dir.path().join(what).join("out");
        let mut emptied = 0;
        assert!(
            wait_until(Duration::from_secs(30), || {
                let key = cli(&["--scan", "--pattern", "*:sales"]);
                let held: u64 = match key.as_str() {
                    "" => 0,
                    key => cli(&["LLEN", key]).parse().unwrap_or(0),
                };
                if held >= 30 {
                    emptied = held;
                    cli(&["DEL", &key]);
                }
                emptied > 0 || run.try_wait().unwrap().is_some()
            }),
            "{what}: the record never held 30 sales"
        );
        assert!(emptied >= 30, "{what}: the run ended before its record held 30 sales");
        assert_eq!(run.wait().unwrap().code(), Some(0), "{what}");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        let t = &results["runs"][0]["trials"][0];
        // The sales deleted, and any made between the count above and the deletion.
        assert!(u(&t["lost_acknowledged"]) >= emptied, "{what}: {t}");
        assert!(u(&t["lost_acknowledged"]) < u(&t["sold"]), "{what}: {t}");
        assert_eq!(t["verdict"], "inconsistent", "{what}: {t}");
        let lost: Vec<&str> = t["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "lost-acknowledged")
            .map(|a| a["text"].as_str().unwrap())
            .collect();
        assert_eq!(lost.len() as u64, u(&t["lost_acknowledged"]).min(50), "{what}: {t}");
        for text in &lost {
            assert!(
                text.contains(" was told it bought ticket ")
                    && text.ends_with("; the store's record of sales does not hold it"),
                "{what}: {text}"
            );
        }
        if what == "trial" {
            assert!(lost[0].starts_with("buyer "), "{}", lost[0]);
            let page = std::fs::read_to_string(out.join("index.html")).unwrap();
            let said = lost[0].split(';').next().unwrap();
            assert!(page.contains(said), "the report's What happened names it: {said}");
            assert!(page.contains("class=\"sold lost"), "the timeline draws it");
        }
    }
}
