//! Reads a history recorded by any program, as operations in JSON lines (DESIGN.md, "History
//! as operations"): an invocation, then its completion by the same process, after Jepsen.
//!
//! Every line is checked: a line that is not an object of the known fields, a completion
//! without its invocation, a second invocation before the first completed, a `type` or `f`
//! it does not know, and a negative time are refused with the line number and the field. An
//! invocation never completed is indeterminate, as `info` is. Each process becomes a worker
//! whose role follows from its `f` (`purchase`: buyer, `sale`: seller, `put`: producer,
//! `take`: entry queue), numbered as the `process` field says.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::history::{History, Kind, Op, Outcome, Role, Worker};

/// A history file that cannot be judged, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read the history {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line breaks the format.
    #[error(
        "{path}, line {line}: {why}. Each line must be one JSON object such as \
         {{\"process\": 3, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 120503}}: see the README, \"History as operations\""
    )]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, counting from 1.
        line: usize,
        /// What is wrong, naming the field.
        why: String,
    },
}

/// One line as it is written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    process: i64,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    f: &'a str,
    time: i64,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    written: Option<i64>,
    #[serde(default)]
    read_time: Option<i64>,
    #[serde(default)]
    write_time: Option<i64>,
    #[serde(default, borrow)]
    error: Option<&'a str>,
    #[serde(default)]
    entry: Option<u64>,
}

/// The fields a line may hold, for the message that names a wrong one.
const FIELDS: [&str; 10] = [
    "process",
    "type",
    "f",
    "time",
    "value",
    "written",
    "read_time",
    "write_time",
    "error",
    "entry",
];

/// Reads a JSON-lines history file.
pub fn read(path: &Path) -> Result<History, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses a JSON-lines history held in memory; `path` names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<History, ImportError> {
    let mut reader = Reader::default();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        reader.line(line).map_err(|why| ImportError::Line {
            path: path.to_path_buf(),
            line: n + 1,
            why,
        })?;
    }
    Ok(reader.finish())
}

#[derive(Default)]
struct Reader {
    /// (role, process) → index into `workers`.
    workers_of: HashMap<(Role, u32), usize>,
    /// Each worker, and the index into `ops` of its invocation that is still open.
    workers: Vec<(Worker, Option<usize>)>,
    ops: Vec<Op>,
}

impl Reader {
    fn line(&mut self, text: &[u8]) -> Result<(), String> {
        let line: Line = serde_json::from_slice(text).map_err(|e| explain(text, &e))?;
        let (kind, role) = match line.f {
            "purchase" => (Kind::Purchase, Role::Buyer),
            "sale" => (Kind::Sale, Role::Seller),
            "put" => (Kind::Put, Role::Producer),
            "take" => (Kind::Take, Role::EntryQueue),
            other => {
                return Err(format!(
                    "field \"f\" is {other:?}, which this checker does not know: use \"purchase\", \"sale\", \"put\" or \"take\""
                ));
            }
        };
        let process = u32::try_from(line.process).map_err(|_| {
            format!(
                "field \"process\" is {}: give a process number from 0 to {}",
                line.process,
                u32::MAX
            )
        })?;
        let time = |field: &str, t: Option<i64>| -> Result<Option<u64>, String> {
            t.map(|t| {
                u64::try_from(t).map_err(|_| {
                    format!("field \"{field}\" is {t}, a negative count of nanoseconds: times count from an origin before the first operation")
                })
            })
            .transpose()
        };
        let at = time("time", Some(line.time))?.unwrap_or_default();
        let (read, write) = (time("read_time", line.read_time)?, time("write_time", line.write_time)?);
        let next = self.workers.len();
        let w = *self.workers_of.entry((role, process)).or_insert(next);
        if w == next {
            let worker = Worker {
                role,
                index: process,
                pid: 0,
                ready_ns: 0,
                finish_ns: None,
            };
            self.workers.push((worker, None));
        }
        let (worker, open) = &mut self.workers[w];
        match line.kind {
            "invoke" => {
                if let Some(i) = *open {
                    return Err(format!(
                        "field \"type\" is \"invoke\", but process {} ({}) invoked {} at {} and it has not completed: \
                         a process makes one operation at a time",
                        line.process,
                        line.f,
                        kind_name(self.ops[i].kind),
                        self.ops[i].start
                    ));
                }
                *open = Some(self.ops.len());
                worker.finish_ns = None;
                self.ops.push(Op::new(w as u32, kind, Outcome::Pending, at));
                return Ok(());
            }
            "ok" | "fail" | "info" => {}
            other => {
                return Err(format!(
                    "field \"type\" is {other:?}, which this checker does not know: use \"invoke\", \"ok\", \"fail\" or \"info\""
                ));
            }
        }
        let Some(i) = open.take() else {
            return Err(format!(
                "field \"type\" is {:?}, but process {} has no invocation open: write its \"invoke\" line first",
                line.kind, line.process
            ));
        };
        if self.ops[i].kind != kind {
            return Err(format!(
                "field \"f\" is {:?}, but process {} invoked {}",
                line.f,
                line.process,
                kind_name(self.ops[i].kind)
            ));
        }
        let outcome = match (line.kind, kind) {
            ("info", _) => Outcome::Pending,
            ("ok", Kind::Purchase | Kind::Sale) => Outcome::Sold,
            ("fail", Kind::Purchase | Kind::Sale) if line.error == Some("unreadable") => Outcome::Unreadable,
            ("fail", Kind::Purchase | Kind::Sale) => Outcome::SoldOut,
            ("ok", _) => Outcome::Ok,
            ("fail", Kind::Put) => Outcome::Dropped,
            _ => Outcome::Closed,
        };
        let op = &mut self.ops[i];
        op.outcome = outcome;
        *op = op
            .with_end((outcome != Outcome::Pending).then_some(at))
            .with_read(read)
            .with_write(write)
            .with_value(line.value)
            .with_written(line.written)
            .with_entry(line.entry);
        if outcome != Outcome::Pending {
            worker.finish_ns = Some(at);
        }
        Ok(())
    }

    /// The history, its workers ordered as sim's history files order them (by role name,
    /// then number) and its operations by worker, each worker's in the order written.
    fn finish(self) -> History {
        let mut order: Vec<usize> = (0..self.workers.len()).collect();
        order.sort_by_key(|&w| (self.workers[w].0.role.name(), self.workers[w].0.index));
        let mut new_index = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as u32;
        }
        let mut ops = self.ops;
        for op in &mut ops {
            op.worker = new_index[op.worker as usize];
        }
        ops.sort_by_key(|op| op.worker); // stable: each worker's own order stays
        let mut workers: Vec<Option<Worker>> = self.workers.into_iter().map(|(w, _)| Some(w)).collect();
        History {
            workers: order.iter().filter_map(|&w| workers[w].take()).collect(),
            ops,
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Purchase => "purchase",
        Kind::Put => "put",
        Kind::Take => "take",
        Kind::Sale => "sale",
    }
}

/// Says which field of a line serde refused, and why: read again as plain JSON, only when
/// a line was refused.
fn explain(text: &[u8], e: &serde_json::Error) -> String {
    let value: serde_json::Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(_) => return format!("not JSON ({e})"),
    };
    let Some(object) = value.as_object() else {
        return format!("not a JSON object but {}", short(&value));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return format!("field {unknown:?} is not one this format has ({})", FIELDS.join(", "));
    }
    for field in ["process", "type", "f", "time"] {
        if !object.contains_key(field) {
            return format!("field \"{field}\" is missing");
        }
    }
    let want = |field: &str| match field {
        "type" | "f" | "error" => "a string",
        "entry" => "a non-negative integer",
        _ => "an integer",
    };
    for (field, v) in object {
        let fits = match want(field) {
            "a string" => v.is_string() || (field == "error" && v.is_null()),
            "a non-negative integer" => v.is_u64() || v.is_null(),
            _ => v.is_i64() || (v.is_null() && !matches!(field.as_str(), "process" | "time")),
        };
        if !fits {
            return format!("field {field:?} is {}, not {}", short(v), want(field));
        }
    }
    format!("{e}")
}

fn short(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<History, String> {
        parse(Path::new("h.jsonl"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn operations_become_a_history_of_workers() {
        let h = parse_str(
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 120503}
{"process": 0, "type": "invoke", "f": "sale", "time": 120600}
{"process": 0, "type": "ok", "f": "sale", "time": 130000, "value": 10, "written": 9}
{"process": 3, "type": "ok", "f": "purchase", "time": 188211, "value": 10, "written": 9, "read_time": 131002, "write_time": 180400}

{"process": 4, "type": "invoke", "f": "purchase", "time": 189000}
{"process": 4, "type": "fail", "f": "purchase", "time": 190001, "value": 0}
{"process": 5, "type": "invoke", "f": "purchase", "time": 190500}
{"process": 5, "type": "fail", "f": "purchase", "time": 190600, "value": null, "error": "unreadable"}
{"process": 6, "type": "invoke", "f": "purchase", "time": 200000}
{"process": 6, "type": "info", "f": "purchase", "time": 200100, "value": 8}
{"process": 7, "type": "invoke", "f": "purchase", "time": 200200}
"#,
        )
        .unwrap();
        let labels: Vec<String> = h.workers.iter().map(Worker::label).collect();
        assert_eq!(
            labels,
            ["buyer 3", "buyer 4", "buyer 5", "buyer 6", "buyer 7", "seller 0"]
        );
        let outcomes: Vec<Outcome> = h.ops.iter().map(|op| op.outcome).collect();
        use Outcome::*;
        assert_eq!(outcomes, [Sold, SoldOut, Unreadable, Pending, Pending, Sold]);
        let sold = h.ops[0];
        assert_eq!(
            (
                sold.start,
                sold.read(),
                sold.write(),
                sold.end(),
                sold.value(),
                sold.written()
            ),
            (120503, Some(131002), Some(180400), Some(188211), Some(10), Some(9))
        );
        assert_eq!((h.ops[3].value(), h.ops[3].end()), (Some(8), None));
        // Who ended with an operation open died in it; who completed its last one finished.
        let finished: Vec<bool> = h.workers.iter().map(|w| w.finish_ns.is_some()).collect();
        assert_eq!(finished, [true, true, true, false, false, true]);
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_and_field() {
        let invoke = r#"{"process": 1, "type": "invoke", "f": "purchase", "time": 5}"#;
        let cases: [(String, &str); 9] = [
            ("{\"process\": 1, \"type\": \"invoke\"".into(), "line 1: not JSON"),
            (format!("{invoke}\n[1, 2]"), "line 2: not a JSON object"),
            (
                r#"{"process": 1, "type": "ok", "f": "purchase", "time": 5}"#.into(),
                "line 1: field \"type\" is \"ok\", but process 1 has no invocation open",
            ),
            (
                format!("{invoke}\n\n{invoke}"),
                "line 3: field \"type\" is \"invoke\", but process 1",
            ),
            (
                r#"{"process": 1, "type": "invite", "f": "purchase", "time": 5}"#.into(),
                "line 1: field \"type\" is \"invite\"",
            ),
            (
                r#"{"process": 1, "type": "invoke", "f": "refund", "time": 5}"#.into(),
                "line 1: field \"f\" is \"refund\"",
            ),
            (
                r#"{"process": 1, "type": "invoke", "f": "purchase", "time": -5}"#.into(),
                "line 1: field \"time\" is -5, a negative count",
            ),
            (
                r#"{"process": 1, "type": "invoke", "f": "purchase", "time": "5"}"#.into(),
                "line 1: field \"time\" is \"5\", not an integer",
            ),
            (
                r#"{"process": 1, "type": "invoke", "time": 5}"#.into(),
                "line 1: field \"f\" is missing",
            ),
        ];
        for (text, want) in cases {
            let e = parse_str(&text).unwrap_err();
            assert!(e.contains(want) && e.starts_with("h.jsonl, line"), "{text}\n→ {e}");
        }
        assert!(parse_str("").unwrap().ops.is_empty());
    }
}
