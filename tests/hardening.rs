//! Hostile input and badly timed signals: each refused in words with exit status 2 (or, for
//! an interrupt, 130), nothing outside the output folder touched, nothing half-made left.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{sim, wait_until};

const LOTTERY: &str = "name = \"small\"\ntrials = 1\nstrategy = \"file-lock\"\n[stock]\ninitial = 5\n[buyers]\ncount = 2\nattempts = 3\nhold_us = 0\n";

/// A finished run of a small scenario in `dir/run`.
fn small_run(dir: &Path) -> PathBuf {
    let scenario = dir.join("small.toml");
    std::fs::write(&scenario, LOTTERY).unwrap();
    let out = dir.join("run");
    sim()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_link_planted_in_the_output_folder_is_refused_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("v.txt");
    std::fs::write(&precious, "precious\n").unwrap();
    let scenario = dir.path().join("small.toml");
    std::fs::write(&scenario, LOTTERY).unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::symlink(&precious, d.join(".sim-run")).unwrap();
    for args in [
        vec!["run".as_ref(), scenario.as_os_str(), "--out".as_ref(), d.as_os_str()],
        vec!["report".as_ref(), d.as_os_str()],
        vec!["check".as_ref(), d.as_os_str()],
    ] {
        let output = sim().args(&args).output().unwrap();
        let err = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(".sim-run") && err.contains("symbolic link"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n", "{args:?}");
    }

    // The files written aside before they are renamed into place are no way in either.
    let run = small_run(dir.path());
    for aside in [".index.html.tmp", ".results.json.tmp"] {
        std::os::unix::fs::symlink(&precious, run.join(aside)).unwrap();
    }
    sim().arg("report").arg(&run).assert().success();
    sim().arg("check").arg(&run).assert().success();
    std::os::unix::fs::symlink(&precious, run.join(".compare.html.tmp")).unwrap();
    // A link to a folder would make the page's place a folder, were it followed.
    std::os::unix::fs::symlink(dir.path(), run.join("compare.html")).unwrap();
    sim().arg("compare").arg(&run).arg(&run).assert().success();
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(run.join("compare.html")).unwrap().is_file());
}

/// `sim check --history FILE --initial 10 --final 10`, with `text` as the file.
fn check_history(text: &[u8]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.jsonl");
    std::fs::write(&file, text).unwrap();
    sim()
        .args(["check", "--history"])
        .arg(&file)
        .args(["--initial", "10", "--final", "10"])
        .output()
        .unwrap()
}

#[test]
fn an_endless_line_is_refused_at_once_naming_it() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["check", "--history", "/dev/zero", "--initial", "10", "--final", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answered = wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some());
    if !answered {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sim check --history /dev/zero did not answer in 60 s");
    }
    let output = child.wait_with_output().unwrap();
    let err = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero, line 1: the line is longer than 1 MiB"),
        "{err}"
    );

    let invoke = "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 5}\n";
    let mut text = invoke.as_bytes().to_vec();
    text.extend(std::iter::repeat_n(b' ', (1 << 20) + 1));
    text.extend(b"\n");
    let output = check_history(&text);
    let err = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("line 2: the line is longer than 1 MiB"), "{err}");
}

#[test]
fn times_that_go_backwards_are_refused_naming_the_line_and_the_field() {
    let cases = [
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 500}\n\
             {\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 200, \"value\": 10, \"written\": 9}\n",
            "line 2: field \"time\" is 200, before its invocation at 500",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 100}\n\
             {\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 300, \"value\": 10, \"written\": 9, \"read_time\": 50, \"write_time\": 10}\n",
            "line 2: field \"read_time\" is 50, before its invocation at 100",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 100}\n\
             {\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 300, \"value\": 10, \"written\": 9, \"read_time\": 150, \"write_time\": 120}\n",
            "line 2: field \"write_time\" is 120, before its \"read_time\" 150",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 100}\n\
             {\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 300}\n",
            "line 2: field \"value\" is missing",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 9223372036854775808}\n",
            "line 1: field \"time\" is 9223372036854775808, out of range: give an integer from 0 to 9223372036854775807",
        ),
    ];
    for (text, want) in cases {
        let output = check_history(text.as_bytes());
        let err = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{text}\n→ {err}");
        assert!(err.contains(want), "{text}\n→ {err}");
    }
}

/// `sim run` on `scenario`, refused before anything runs: its standard error.
fn refused(scenario: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let output = sim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{scenario}\n→ {err}");
    assert!(!dir.path().join("out").exists(), "{scenario}: the run began");
    err
}

#[test]
fn a_password_is_never_printed() {
    for scenario in [
        "strategy = \"atomic\"\n[stock]\nstore = \"postgres\"\nurl = \"postgres://admin:s3cretpw@127.0.0.1:54329/postgres\" junk\n",
        "strategy = \"atomic\"\n[stock]\nstore = \"postgres\"\nurl = \"host=127.0.0.1 port=54329 user=admin password=s3cretpw\"\n",
        "strategy = \"atomic\"\n[stock]\nstore = \"redis\"\nurl = \"redis://:s3cretpw@127.0.0.1:1/0\"\ninitial = \"redis://:s3cretpw@h\"\n",
        "trials = \"host=h password='s3cretpw'\"\n",
    ] {
        let err = refused(scenario);
        assert!(!err.contains("s3cretpw") && err.contains("***"), "{scenario}\n→ {err}");
    }
}

#[test]
fn a_soak_with_kill_store_is_refused_naming_the_field() {
    let err = refused(
        "strategy = \"atomic\"\n[stock]\nstore = \"redis\"\n[buyers]\nduration_ms = 3000\n[faults]\nkill_store = true\n",
    );
    assert!(
        err.contains("line 7, field `faults.kill_store`") && err.contains("a soak"),
        "{err}"
    );
}

#[test]
fn a_names_limit_counts_characters() {
    let dir = tempfile::tempdir().unwrap();
    let name = "é".repeat(51);
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        format!("name = \"{name}\"\n{}", LOTTERY.split_once('\n').unwrap().1),
    )
    .unwrap();
    sim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let err = refused(&format!("name = \"{}\"\n", "é".repeat(101)));
    assert!(err.contains("use 1 to 100 letters"), "{err}");
}

#[test]
fn an_earlier_run_beside_a_users_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    let output = sim()
        .arg("run")
        .arg(dir.path().join("small.toml"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let err = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains(&run.join("notes.txt").display().to_string()), "{err}");
    assert!(run.join("results.json").is_file() && run.join("notes.txt").is_file());
}

#[test]
fn check_holds_the_folders_lock_as_run_and_report_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    // As a run into the folder holds it.
    let marker = std::fs::File::open(run.join(".sim-run")).unwrap();
    fs2::FileExt::try_lock_exclusive(&marker).unwrap();
    let before = std::fs::read(run.join("results.json")).unwrap();
    for command in ["check", "report"] {
        let output = sim().arg(command).arg(&run).output().unwrap();
        let err = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {err}");
        assert!(err.contains("is in use by another sim"), "{command}: {err}");
    }
    assert_eq!(std::fs::read(run.join("results.json")).unwrap(), before);
    drop(marker);
    let output = sim().arg("check").arg(&run).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    // The marker names its last holder.
    let marker = String::from_utf8_lossy(&std::fs::read(run.join(".sim-run")).unwrap()).into_owned();
    assert!(marker.contains("sim check"), "{marker}");
}

/// `sim ARGS` with standard output (`stdout`) or standard error (else) a pipe whose reader is
/// gone before it writes a byte: its exit status and what it wrote on the other.
fn closed(args: &[&std::ffi::OsStr], stdout: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sim"));
    command.args(args);
    if stdout {
        command.stdout(writer).stderr(Stdio::piped());
    } else {
        command.stderr(writer).stdout(Stdio::piped());
    }
    let output = command.output().unwrap();
    let other = if stdout { &output.stderr } else { &output.stdout };
    (output.status.code(), String::from_utf8_lossy(other).into_owned())
}

#[test]
fn every_command_that_prints_stops_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let run = small_run(dir.path());
    let history = dir.path().join("h.jsonl");
    sim()
        .arg("export")
        .arg(run.join("trials/file-lock/000"))
        .arg("--out")
        .arg(&history)
        .assert()
        .success();
    let scenario = dir.path().join("small.toml");
    let again = dir.path().join("again");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "trials = 0\n").unwrap();
    let s = |text: &'static str| -> &std::ffi::OsStr { text.as_ref() };
    let commands: Vec<(Vec<&std::ffi::OsStr>, i32)> = vec![
        (vec![s("run"), scenario.as_os_str(), s("--out"), again.as_os_str()], 0),
        (vec![s("run"), bad.as_os_str()], 2),
        (vec![s("report"), run.as_os_str()], 0),
        (vec![s("check"), run.as_os_str()], 0),
        (
            vec![
                s("check"),
                s("--history"),
                history.as_os_str(),
                s("--initial"),
                s("5"),
                s("--final"),
                s("0"),
            ],
            0,
        ),
        (
            vec![
                s("check"),
                s("--history"),
                bad.as_os_str(),
                s("--initial"),
                s("5"),
                s("--final"),
                s("0"),
            ],
            2,
        ),
        (
            vec![s("export"), run.join("trials/file-lock/000").into_os_string().leak()],
            0,
        ),
        (vec![s("export"), run.as_os_str()], 0),
        (vec![s("compare"), run.as_os_str(), run.as_os_str()], 0),
        (vec![s("completions"), s("bash")], 0),
        (vec![s("man")], 0),
        (vec![s("--help")], 0),
        (vec![s("--version")], 0),
        (vec![s("nonsense")], 2),
    ];
    for (args, code) in &commands {
        for stdout in [true, false] {
            let (status, said) = closed(args, stdout);
            assert_eq!(
                status,
                Some(*code),
                "{args:?} (closed {}): {said}",
                if stdout { "stdout" } else { "stderr" }
            );
            assert!(
                !said.contains("panicked") && !said.contains("failed printing"),
                "{args:?}: {said}"
            );
        }
    }
}

/// The pids of the processes named `comm` in the process group `group`.
fn in_group(group: u32, comm: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let pgrp = stat[close + 1..]
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse::<u32>().ok());
        if &stat[open + 1..close] == comm && pgrp == Some(group) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn ctrl_c_while_initdb_runs_exits_130_and_leaves_nothing_half_made() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p1");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/postgres.toml");
    // In a process group of its own, as `setsid` puts it, so that the whole group is signalled
    // as a Ctrl-C at a terminal signals it.
    // `--out p1`, relative, as the reproduction gives it.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(&scenario)
        .args(["--out", "p1"])
        .current_dir(dir.path())
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id();
    let caught = wait_until(Duration::from_secs(60), || !in_group(group, "initdb").is_empty());
    assert!(
        caught,
        "no initdb ran in sim's process group: is PostgreSQL installed (scripts/test installs it)?"
    );
    let signalled = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(signalled.success());
    let answered = wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some());
    if !answered {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
    }
    let output = child.wait_with_output().unwrap();
    let err = stderr_of(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    // initdb's own postgres, signalled too, may take a moment more to end.
    let gone = wait_until(Duration::from_secs(10), || {
        in_group(group, "postgres").is_empty() && in_group(group, "initdb").is_empty()
    });
    assert!(gone, "initdb or its postgres outlived sim by 10 s");
    // No data folder, half-made or whole (an interrupt that lands just after initdb ended
    // stops the server, which removes its folder).
    assert!(!out.join("server/postgres").exists(), "{err}");
}
