//! What sim offers the shell around it: completion scripts, a manual page, and colour only
//! where a person reads it.

mod common;

use std::process::Command;

use common::{run_scenario, sim};

fn stdout_of(args: &[&str]) -> (i32, String, String) {
    let out = sim().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_know_every_command_and_its_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = stdout_of(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["compare", "report", "fail-if-slower", "export-csv", "completions"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        assert!(
            !script.contains("__worker"),
            "{shell}: the hidden worker command is offered"
        );
    }
    let (code, _, err) = stdout_of(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("tcsh") && err.contains("bash"), "{err}");
}

#[test]
fn the_manual_page_is_roff_naming_every_command() {
    let (code, page, err) = stdout_of(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH sim 1"), "{page}");
    for word in ["compare", "report", "completions", "run", "check", "export"] {
        assert!(page.contains(word), "no {word} in the manual");
    }
    assert!(!page.contains("__worker"));

    // One page per command, as the main page's SEE ALSO-style list promises.
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = stdout_of(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "sim-check.1",
            "sim-compare.1",
            "sim-completions.1",
            "sim-export.1",
            "sim-man.1",
            "sim-report.1",
            "sim-run.1",
            "sim.1"
        ]
    );
    let compare = std::fs::read_to_string(dir.path().join("sim-compare.1")).unwrap();
    assert!(compare.contains("fail\\-if\\-slower"), "{compare}");
    let (code, _, err) = stdout_of(&["man", "--out-dir", "/nonexistent/folder"]);
    assert_eq!(code, 2);
    assert!(err.contains("--out-dir /nonexistent/folder"), "{err}");
}

#[test]
fn verdicts_are_coloured_on_a_terminal_unless_no_color() {
    let run = run_scenario(
        "trials = 2\nstrategy = \"file-lock\"\n[stock]\ninitial = 5\n[buyers]\ncount = 4\nhold_us = 100\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // In a pipe, as here: plain.
    assert!(!run.stdout().contains('\x1b'), "{}", run.stdout());

    // On a terminal: `script` (util-linux, in every Debian) gives sim one.
    let bin = assert_cmd::cargo::cargo_bin("sim");
    let on_terminal = |no_color: Option<&str>| {
        let page = run.out.join("self.html");
        let command = format!(
            "{} compare {} {} --out {}",
            bin.display(),
            run.out.display(),
            run.out.display(),
            page.display()
        );
        let mut script = Command::new("script");
        script.args(["-qec", &command, "/dev/null"]).env("TERM", "xterm");
        match no_color {
            Some(v) => script.env("NO_COLOR", v),
            None => script.env_remove("NO_COLOR"),
        };
        let out = script
            .output()
            .expect("`script` (util-linux) runs a command on a pseudo-terminal; install util-linux");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_terminal(None);
    assert!(coloured.contains("\x1b[32m2 safe\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[2mwithin noise\x1b[0m"), "{coloured:?}");
    let plain = on_terminal(Some("1"));
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("2 safe"), "{plain:?}");
}
