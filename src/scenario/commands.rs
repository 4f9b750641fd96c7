//! `[[faults.commands]]`: the user's own fault commands (`docker pause db`, `kill -STOP`,
//! `iptables …`), run once per trial at a planned moment, undone after a while, and shown
//! on the timeline. They are how a store or service sim did not start is broken: sim never
//! kills what it did not start, but it runs what the user asks it to.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::validate::Validator;
use super::{ScenarioError, mask_text};

/// How long a command may run before its process group is killed, when not given.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// A command line: a list run as it is (no shell), or a string run by `sh -c`. Saved (in
/// results.json) with any password in it masked, as a url's is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// The program and its arguments.
    Argv(Vec<String>),
    /// A line for `sh -c`.
    Shell(String),
}

impl Serialize for CommandLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CommandLine::Argv(argv) => s.collect_seq(argv.iter().map(|a| mask_text(a))),
            CommandLine::Shell(line) => s.serialize_str(&mask_text(line)),
        }
    }
}

impl CommandLine {
    /// The program and its arguments, as they are run.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandLine::Argv(argv) => argv.clone(),
            CommandLine::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
        }
    }

    /// As a message shows it, with any password in it masked.
    pub fn shown(&self) -> String {
        let text = match self {
            CommandLine::Argv(argv) => argv.join(" "),
            CommandLine::Shell(line) => line.clone(),
        };
        mask_text(&text)
    }
}

/// One `[[faults.commands]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCommand {
    /// What the timeline and the messages call it.
    pub name: String,
    /// What breaks the system.
    pub run: CommandLine,
    /// What mends it, `duration_ms` after `run` ended; also run if the trial ends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<CommandLine>,
    /// When `run` starts, in ms after the trial's start gate.
    pub at_ms: u64,
    /// From the end of `run` to the start of `undo`.
    pub duration_ms: u64,
    /// How long `run` or `undo` may take before its process group is killed.
    pub timeout_ms: u64,
}

/// One `[[faults.commands]]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommand {
    pub(super) name: Option<Spanned<String>>,
    pub(super) run: Option<Spanned<toml::Value>>,
    pub(super) undo: Option<Spanned<toml::Value>>,
    pub(super) at_ms: Option<Spanned<i64>>,
    pub(super) duration_ms: Option<Spanned<i64>>,
    pub(super) timeout_ms: Option<Spanned<i64>>,
}

impl Validator<'_> {
    /// `[[faults.commands]]`: each with a command to run, bounds on its moments.
    pub(super) fn commands(&self, raw: &[RawCommand]) -> Result<Vec<FaultCommand>, ScenarioError> {
        if raw.len() > 20 {
            return Err(self.error(
                raw[20].run.as_ref().map(|r| r.span()),
                "faults.commands",
                format!(
                    "{} commands are listed, and a trial runs at most 20: drop some",
                    raw.len()
                ),
            ));
        }
        let mut commands: Vec<FaultCommand> = Vec::with_capacity(raw.len());
        for (i, c) in raw.iter().enumerate() {
            let field = |f: &str| format!("faults.commands[{i}].{f}");
            let name = match &c.name {
                Some(n) if n.get_ref().trim().is_empty() || n.get_ref().len() > 80 => {
                    return Err(self.error(
                        Some(n.span()),
                        &field("name"),
                        "a command's name is 1 to 80 characters: the timeline shows it".into(),
                    ));
                }
                Some(n) if commands.iter().any(|other| &other.name == n.get_ref()) => {
                    return Err(self.error(
                        Some(n.span()),
                        &field("name"),
                        format!("\"{}\" names two commands", n.get_ref()),
                    ));
                }
                Some(n) => n.get_ref().clone(),
                None => format!("command {i}"),
            };
            let Some(run) = &c.run else {
                return Err(self.error(
                    c.name.as_ref().map(|n| n.span()),
                    &field("run"),
                    "a fault command needs `run`: a list such as [\"docker\", \"pause\", \"db\"], or a line for sh -c"
                        .into(),
                ));
            };
            let run = self.command_line(run, &field("run"))?;
            let undo = match &c.undo {
                Some(u) => Some(self.command_line(u, &field("undo"))?),
                None => None,
            };
            let duration_ms = self.number(&c.duration_ms, &field("duration_ms"), 0, 0, 86_400_000, " (a day)")?;
            if duration_ms > 0 && undo.is_none() {
                return Err(self.error(
                    c.duration_ms.as_ref().map(|d| d.span()),
                    &field("duration_ms"),
                    "duration_ms is how long the fault lasts before `undo` mends it, and there is no undo: add \
                     undo, or drop duration_ms"
                        .into(),
                ));
            }
            commands.push(FaultCommand {
                name,
                run,
                undo,
                at_ms: self.number(&c.at_ms, &field("at_ms"), 0, 0, 86_400_000, " (a day)")?,
                duration_ms,
                timeout_ms: self.number(
                    &c.timeout_ms,
                    &field("timeout_ms"),
                    DEFAULT_TIMEOUT_MS,
                    1,
                    3_600_000,
                    " (an hour)",
                )?,
            });
        }
        Ok(commands)
    }

    /// A command line: a non-empty list of strings, or a non-empty string.
    fn command_line(&self, value: &Spanned<toml::Value>, field: &str) -> Result<CommandLine, ScenarioError> {
        let line = match value.get_ref() {
            toml::Value::String(s) if !s.trim().is_empty() => Some(CommandLine::Shell(s.clone())),
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .map(CommandLine::Argv),
            _ => None,
        };
        line.ok_or_else(|| {
            self.error(
                Some(value.span()),
                field,
                "give the program and its arguments as a list of non-empty strings, [\"docker\", \"pause\", \"db\"], \
                 or one line for sh -c, \"docker pause db\""
                    .into(),
            )
        })
    }
}
