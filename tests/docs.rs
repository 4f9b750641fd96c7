//! The docs stay true. `docs/reference/` is held to the code: every field the scenario
//! validator accepts has its row in scenario.md (and every row there is accepted), every flag
//! that `sim COMMAND --help` lists is under that command's heading in command-line.md, and
//! every CSV column is in results.md. Every relative link of README.md, CONTRIBUTING.md and
//! docs/ leads to a file, and a `#anchor` into a Markdown page to one of its headings.
//!
//! Each check is a function of text that returns what is wrong, so that the self-tests at the
//! end can show each of them failing on a made-up page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Fails with every problem found, one per line.
fn assert_none(problems: Vec<String>, what: &str) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// The Markdown the checks need: lines outside code fences, headings, sections, links.

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// The heading of a line, if it is an ATX heading: its level and its text.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

/// The text of a heading as it reads: links' targets and inline code's backticks dropped.
fn heading_text(raw: &str) -> String {
    let mut text = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find("](") {
        let close = rest[at..].find(')').map_or(rest.len(), |c| at + c + 1);
        text.push_str(&rest[..at + 1]);
        rest = &rest[close..];
    }
    text.push_str(rest);
    text.replace('`', "")
}

/// GitHub's anchor for a heading: lower case; letters, digits, `-` and `_` kept, other
/// punctuation dropped; each space a hyphen.
fn slug(heading: &str) -> String {
    heading_text(heading)
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a Markdown text; a repeated heading gets `-1`, `-2` as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        if let Some((_, raw)) = heading(line) {
            let base = slug(raw);
            let n = seen.entry(base.clone()).or_insert(0);
            out.insert(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
            *n += 1;
        }
    }
    out
}

/// The sections of a Markdown text under its headings of `level`, in order: the heading's
/// text (backticks dropped) and the lines up to the next heading of that level or above,
/// code fences left out.
fn sections(text: &str, level: usize) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for (_, line) in prose(text) {
        match heading(line) {
            Some((l, raw)) if l == level => {
                out.push((heading_text(raw), Vec::new()));
                inside = true;
            }
            Some((l, _)) if l < level => inside = false,
            _ if inside => out.last_mut().expect("a section").1.push(line.to_string()),
            _ => {}
        }
    }
    out
}

/// The section under the heading `title`, if there is one.
fn section<'a>(sections: &'a [(String, Vec<String>)], title: &str) -> Option<&'a [String]> {
    sections
        .iter()
        .find(|(t, _)| t == title)
        .map(|(_, lines)| lines.as_slice())
}

/// The names that rows of a table in `lines` open with: `| \`name\` |` or `| \`--flag N\` |`
/// gives `name`, `--flag`.
fn row_names(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.trim_start().strip_prefix("| `"))
        .filter_map(|cell| cell.split(['`', ' ', ',']).next())
        .map(String::from)
        .collect()
}

/// A line without its inline code, which holds no links.
fn without_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// The targets of a Markdown text's inline links and images, and of its link definitions,
/// with their line numbers; none from code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        let line = without_code(line);
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some((label, target)) = trimmed.split_once("]:")
            && !label.contains("](")
        {
            if let Some(target) = target.split_whitespace().next() {
                out.push((n, target.trim_matches(['<', '>']).to_string()));
            }
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((n, target.trim_matches(['<', '>']).to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// The relative links of `file` (whose text is `text`) that lead nowhere: a missing file or
/// folder, or an anchor that no heading of the Markdown page it names has. Paths starting
/// with `/` are taken from `root`, as GitHub takes them from the repository's.
fn broken_links(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (line, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let at = format!(
            "{}:{line}: `{target}`",
            file.strip_prefix(root).unwrap_or(file).display()
        );
        let dest = if path.is_empty() {
            file.to_path_buf()
        } else if let Some(from_root) = path.strip_prefix('/') {
            root.join(from_root)
        } else {
            normalize(&file.parent().unwrap_or(root).join(path))
        };
        if !dest.exists() {
            let shown = dest.strip_prefix(root).unwrap_or(&dest).display().to_string();
            problems.push(format!("{at} leads to {shown}, which does not exist"));
            continue;
        }
        let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
            continue;
        };
        if dest.extension().is_some_and(|e| e == "md") && !anchors(&read(&dest)).contains(anchor) {
            let shown = dest.strip_prefix(root).unwrap_or(&dest).display().to_string();
            problems.push(format!("{at}: {shown} has no heading whose anchor is #{anchor}"));
        }
    }
    problems
}

/// `a/b/../c` as `a/c`, without asking the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// README.md, CONTRIBUTING.md and every Markdown page under docs/.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    walk(&root.join("docs"), &mut files);
    files.sort();
    files
}

// The scenario reference against the validator.

/// What is wrong with a scenario reference against the fields the validator `accepted`
/// (`name`, `stock`, `stock.initial`, …): a field with no row under its table's heading
/// (`## [stock]`, a row opening with `` `initial` ``; top-level fields under `## Top level`),
/// and a row or a table heading that names nothing the validator takes. A table without
/// fields of its own (`expect`, whose keys are free) has its keys in `free_keys`.
fn scenario_doc_problems(doc: &str, accepted: &[String], free_keys: &BTreeMap<&str, Vec<String>>) -> Vec<String> {
    let sections = sections(doc, 2);
    let rows = |title: &str| section(&sections, title).map(row_names);
    let mut problems = Vec::new();
    let tops: Vec<&str> = accepted
        .iter()
        .filter(|f| !f.contains('.'))
        .map(String::as_str)
        .collect();
    let is_table =
        |top: &str| free_keys.contains_key(top) || accepted.iter().any(|f| f.starts_with(&format!("{top}.")));
    let top_rows = rows("Top level").unwrap_or_default();
    for &top in &tops {
        if is_table(top) {
            if rows(&format!("[{top}]")).is_none() {
                problems.push(format!("table `{top}` has no heading `## [{top}]`"));
            }
        } else if !top_rows.iter().any(|r| r == top) {
            problems.push(format!("`{top}` has no row under `## Top level`"));
        }
    }
    for field in accepted {
        let Some((table, name)) = field.split_once('.') else {
            continue;
        };
        if let Some(rows) = rows(&format!("[{table}]"))
            && !rows.iter().any(|r| r == name)
        {
            problems.push(format!("`{field}` has no row `{name}` under `## [{table}]`"));
        }
    }
    for row in &top_rows {
        if !tops.contains(&row.as_str()) || is_table(row) {
            problems.push(format!(
                "`## Top level` has a row `{row}`, which the validator does not accept there"
            ));
        }
    }
    for (title, lines) in &sections {
        let Some(table) = title.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            continue;
        };
        if !tops.contains(&table) {
            problems.push(format!("`## [{table}]` names a table the validator does not accept"));
            continue;
        }
        let keys = free_keys.get(table);
        for row in row_names(lines) {
            let known = match keys {
                Some(keys) => keys.contains(&row),
                None => accepted.contains(&format!("{table}.{row}")),
            };
            if !known {
                problems.push(format!(
                    "`## [{table}]` has a row `{row}`, which the validator does not accept"
                ));
            }
        }
        if let Some(keys) = keys {
            let documented = row_names(lines);
            for key in keys.iter().filter(|k| !documented.contains(k)) {
                problems.push(format!("`{table}.{key}` has no row `{key}` under `## [{table}]`"));
            }
        }
    }
    problems
}

#[test]
fn every_scenario_field_is_in_the_reference_and_nothing_else() {
    let doc = read(&root().join("docs/reference/scenario.md"));
    let mut expect: Vec<String> = sim::scenario::ExpectKey::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    expect.push("final_stock".into());
    let accepted = sim::scenario::accepted_fields();
    assert!(accepted.len() > 30, "accepted_fields() gave only {accepted:?}");
    assert_none(
        scenario_doc_problems(&doc, &accepted, &BTreeMap::from([("expect", expect)])),
        "docs/reference/scenario.md against sim::scenario::accepted_fields()",
    );
}

// The command-line reference against `--help`.

/// The subcommands that `sim --help` lists, but `help`, which prints the others' help.
fn commands_of(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

/// The long flags that a `--help` text defines: on the lines that open with a flag
/// (`  -h, --help`, `      --out <DIR>  Where…`), each `--name` before the description.
fn long_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines().map(str::trim_start).filter(|l| l.starts_with('-')) {
        for token in line.split_whitespace() {
            if !(token.starts_with('-') || token.starts_with('<') || token.starts_with('[')) {
                break;
            }
            if let Some(name) = token.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() {
                    flags.insert(format!("--{name}"));
                }
            }
        }
    }
    flags
}

/// What the binary's `--help` says, for `args` (`["run"]`, or none for sim itself).
fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .arg("--help")
        .output()
        .expect("running sim --help");
    assert!(output.status.success(), "sim {args:?} --help failed: {output:?}");
    String::from_utf8(output.stdout).expect("help in UTF-8")
}

/// What is wrong with a command-line reference against the flags of each command (`sim`,
/// `sim run`, …): a command with no `## sim run` heading, a flag of its help missing under
/// it (as `` `--out` `` or `` `--out DIR` ``), and a table row there naming a flag the command
/// does not have.
fn flag_doc_problems(doc: &str, flags: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let sections = sections(doc, 2);
    let mut problems = Vec::new();
    for (command, flags) in flags {
        let Some(lines) = section(&sections, command) else {
            problems.push(format!("`{command}` has no heading `## {command}`"));
            continue;
        };
        let text = lines.join("\n");
        for flag in flags {
            if !text.contains(&format!("`{flag}`")) && !text.contains(&format!("`{flag} ")) {
                problems.push(format!("`{command} {flag}` is not under `## {command}`"));
            }
        }
        for row in row_names(lines).into_iter().filter(|r| r.starts_with("--")) {
            if !flags.contains(&row) {
                problems.push(format!(
                    "`## {command}` documents `{row}`, which `{command} --help` does not list"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_flag_of_every_command_is_in_the_reference() {
    let top = help(&[]);
    let mut flags = BTreeMap::from([("sim".to_string(), long_flags(&top))]);
    let commands = commands_of(&top);
    assert!(
        commands.len() >= 7 && commands.iter().any(|c| c == "run"),
        "sim --help lists only {commands:?}"
    );
    for command in commands {
        let own = long_flags(&help(&[command.as_str()]));
        assert!(own.contains("--help"), "sim {command} --help lists no --help: {own:?}");
        flags.insert(format!("sim {command}"), own);
    }
    assert!(flags["sim run"].contains("--keep-histories"), "{:?}", flags["sim run"]);
    let doc = read(&root().join("docs/reference/command-line.md"));
    assert_none(
        flag_doc_problems(&doc, &flags),
        "docs/reference/command-line.md against sim --help",
    );
}

// The results reference against the CSV export.

/// The `names` that do not appear as `` `name` `` under the heading `title` of `doc`.
fn missing_in_section(doc: &str, title: &str, names: &[&str]) -> Vec<String> {
    let sections = sections(doc, 2);
    let Some(lines) = section(&sections, title) else {
        return vec![format!("no heading `## {title}`")];
    };
    let text = lines.join("\n");
    names
        .iter()
        .filter(|n| !text.contains(&format!("`{n}`")))
        .map(|n| format!("`{n}` is not under `## {title}`"))
        .collect()
}

#[test]
fn every_csv_column_is_in_the_reference() {
    let doc = read(&root().join("docs/reference/results.md"));
    assert_none(
        missing_in_section(&doc, "CSV columns", &sim::results::spreadsheet::CSV_COLUMNS),
        "docs/reference/results.md against the CSV columns",
    );
}

// Links.

#[test]
fn every_relative_link_leads_somewhere() {
    let root = root();
    let files = markdown_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("docs/reference/scenario.md")),
        "found only {files:?}"
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        checked += links(&text).len();
        problems.extend(broken_links(&root, file, &text));
    }
    assert!(checked > 30, "found only {checked} links in {files:?}");
    assert_none(problems, "relative links of README.md, CONTRIBUTING.md and docs/");
}

#[test]
fn the_readme_keeps_its_two_commands() {
    let readme = read(&root().join("README.md"));
    for command in ["cargo run --release -- run scenarios/lottery.toml", "scripts/test"] {
        assert!(readme.contains(command), "README.md lost `{command}`");
    }
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: it is the front door, at most 300"
    );
}

// Each check fails when it should: the same functions on made-up pages.

#[test]
fn a_missing_or_unknown_scenario_field_is_reported() {
    let accepted: Vec<String> = ["name", "stock", "stock.initial", "stock.file", "expect"]
        .map(String::from)
        .to_vec();
    let free = BTreeMap::from([("expect", vec!["oversell".to_string(), "final_stock".to_string()])]);
    let good = "## Top level\n| `name` | x |\n## [stock]\n| field |\n| `initial` | 10 |\n| `file` | s |\n\
                ## [expect]\n| `oversell` | b |\n| `final_stock` | n |\n";
    assert_eq!(scenario_doc_problems(good, &accepted, &free), Vec::<String>::new());

    let doc = "## Top level\n| `name` | x |\n| `trials` | 10 |\n## [stock]\n| `initial` | 10 |\n\
               | `replicas` | 0 |\n## [service]\n## [expect]\n| `oversell` | b |\n| `oversel` | b |\n";
    let problems = scenario_doc_problems(doc, &accepted, &free).join("\n");
    for expected in [
        "`stock.file` has no row `file` under `## [stock]`",
        "`## Top level` has a row `trials`",
        "`## [stock]` has a row `replicas`",
        "`## [service]` names a table",
        "`## [expect]` has a row `oversel`",
        "`expect.final_stock` has no row",
    ] {
        assert!(problems.contains(expected), "{expected:?} not in:\n{problems}");
    }
    // A field under the wrong table's heading does not count.
    let misplaced = "## Top level\n| `name` | x |\n| `initial` | 10 |\n## [stock]\n| `file` | s |\n## [expect]\n";
    let problems = scenario_doc_problems(misplaced, &accepted, &free).join("\n");
    assert!(problems.contains("`stock.initial` has no row"), "{problems}");
    assert!(problems.contains("`## Top level` has a row `initial`"), "{problems}");
}

#[test]
fn help_text_gives_its_commands_and_flags() {
    let top = "Usage: sim <COMMAND>\n\nCommands:\n  run    Run a scenario\n  check  Judge\n  help   Print this\n\n\
               Options:\n  -h, --help     Print help\n  -V, --version  Print version\n";
    assert_eq!(commands_of(top), ["run", "check"]);
    assert_eq!(long_flags(top), BTreeSet::from(["--help".into(), "--version".into()]));
    let run = "Options:\n      --out <DIR>\n          Where to write (see --trials)\n\n      --keep-histories <WHICH>\n\
               \x20         Possible values:\n          - all:       Every trial's\n\
               \x20     --fail-if-slower <PCT>  Exit 1 when --noise is passed\n  -h, --help\n";
    assert_eq!(
        long_flags(run),
        BTreeSet::from([
            "--out".into(),
            "--keep-histories".into(),
            "--fail-if-slower".into(),
            "--help".into()
        ])
    );
}

#[test]
fn a_missing_or_unknown_flag_is_reported() {
    let flags = BTreeMap::from([
        ("sim".to_string(), BTreeSet::from(["--help".to_string()])),
        (
            "sim run".to_string(),
            BTreeSet::from(["--out".to_string(), "--trials".to_string(), "--help".to_string()]),
        ),
        ("sim man".to_string(), BTreeSet::from(["--out-dir".to_string()])),
    ]);
    let doc = "## sim\n| `--help` | h |\n## sim run\n| `--out DIR` | o |\n| `--gone` | g |\n`--help`, `-h`\n\
               ## sim report\nsee `--trials` of sim run\n";
    let problems = flag_doc_problems(doc, &flags).join("\n");
    for expected in [
        "`sim run --trials` is not under `## sim run`",
        "`## sim run` documents `--gone`",
        "`sim man` has no heading `## sim man`",
    ] {
        assert!(problems.contains(expected), "{expected:?} not in:\n{problems}");
    }
    assert!(!problems.contains("--out`"), "{problems}");
    assert!(!problems.contains("`sim --help`"), "{problems}");
}

#[test]
fn a_missing_column_is_reported() {
    let doc = "## CSV columns\n| `strategy` | s |\n| `buyers`, `hold_us` | b |\n## Other\n`seed`\n";
    assert_eq!(
        missing_in_section(doc, "CSV columns", &["strategy", "hold_us", "seed"]),
        ["`seed` is not under `## CSV columns`"]
    );
    assert_eq!(missing_in_section(doc, "CSV", &["strategy"]), ["no heading `## CSV`"]);
}

#[test]
fn a_broken_link_or_anchor_is_reported() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(
        root.join("docs/b.md"),
        "# B\n## Comparing two runs\n## The lesson's patterns\n```\n## Not a heading\n```\n",
    )
    .unwrap();
    std::fs::write(root.join("picture.png"), b"").unwrap();
    let text = "# A\n## Here\nSee [b](docs/b.md#comparing-two-runs), [p](docs/b.md#the-lessons-patterns), \
                ![pic](picture.png), [here](#here), [web](https://example.com/x#y) and `[code](nowhere.md)`.\n\
                Broken: [gone](docs/gone.md), [bad anchor](docs/b.md#not-a-heading), [self](#there).\n\
                ```\n[in a fence](fence.md)\n```\n[def]: docs/missing.md\n";
    let file = root.join("a.md");
    std::fs::write(&file, text).unwrap();
    let problems = broken_links(root, &file, text);
    let all = problems.join("\n");
    assert_eq!(problems.len(), 4, "{all}");
    for expected in ["docs/gone.md", "#not-a-heading", "#there", "docs/missing.md"] {
        assert!(all.contains(expected), "{expected:?} not in:\n{all}");
    }
}

#[test]
fn anchors_are_githubs() {
    for (heading, anchor) in [
        (
            "Faults, interrupts, and what is left behind",
            "faults-interrupts-and-what-is-left-behind",
        ),
        (
            "The real servers: PostgreSQL and Redis",
            "the-real-servers-postgresql-and-redis",
        ),
        ("Reading `results.json`", "reading-resultsjson"),
        ("`unsafe` lives in src/sys/", "unsafe-lives-in-srcsys"),
        ("sim compare", "sim-compare"),
        ("[stock]", "stock"),
        ("The binary history (history.bin)", "the-binary-history-historybin"),
        ("See [the guide](docs/guide.md)", "see-the-guide"),
    ] {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
    assert_eq!(
        anchors("# Notes\n## Notes\n## Notes\n"),
        BTreeSet::from(["notes".into(), "notes-1".into(), "notes-2".into()])
    );
}
