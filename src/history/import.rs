//! Reads a history recorded by any program, as operations in JSON lines
//! (docs/reference/history.md): an invocation, then its completion by the same process,
//! after Jepsen.
//!
//! Every line is checked: a line that is not an object of the known fields, a completion
//! without its invocation, a second invocation before the first completed, a `type` or `f`
//! it does not know, and a negative time are refused with the line number and the field. An
//! invocation never completed is indeterminate, as `info` is. Each process becomes a worker
//! whose role follows from its `f` (`purchase`: buyer, `sale`: seller, `put`: producer,
//! `take`: entry queue), numbered as the `process` field says.

use std::collections::HashMap;
use std::io::Read;
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
         {{\"process\": 3, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 120503}}: see docs/reference/history.md, \"History as operations\""
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
#[derive(Debug, PartialEq, Deserialize)]
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

/// The longest line read: a longer one is refused, naming it, rather than held in memory.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes read from the file at a time.
const CHUNK: usize = 4 << 20;
/// The most operations a history may hold: each takes 64 bytes, and up to 66 more while it is
/// judged, so that a history of this many (4,000,000 lines) is checked in 256 MiB.
pub const MAX_OPS: usize = 2_000_000;

/// Reads a JSON-lines history file, a chunk at a time: what it holds besides the operations
/// read so far is one chunk and at most one line.
pub fn read(path: &Path) -> Result<History, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut reader = Reader::default();
    let mut lines = Lines { path, number: 0 };
    let mut buf = vec![0u8; CHUNK + MAX_LINE + 1];
    let mut held = 0;
    loop {
        let n = match file.read(&mut buf[held..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        let filled = held + n;
        // At the end of the file, its last line needs no newline.
        let whole = match n {
            0 => filled,
            _ => memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |at| at + 1),
        };
        lines.feed(&buf[..whole], &mut reader)?;
        if n == 0 {
            return Ok(reader.finish());
        }
        buf.copy_within(whole..filled, 0);
        held = filled - whole;
        if held > MAX_LINE {
            return Err(lines.too_long(lines.number + 1));
        }
    }
}

/// Parses a JSON-lines history held in memory; `path` names it in errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<History, ImportError> {
    let mut reader = Reader::default();
    Lines { path, number: 0 }.feed(bytes, &mut reader)?;
    Ok(reader.finish())
}

/// Whole lines, numbered from the file's first.
struct Lines<'a> {
    path: &'a Path,
    /// The lines fed so far.
    number: usize,
}

impl Lines<'_> {
    /// Reads each line of `bytes`, which ends at the end of a line (or of the file).
    fn feed(&mut self, bytes: &[u8], reader: &mut Reader) -> Result<(), ImportError> {
        let mut from = 0;
        let last = (bytes.last().is_some_and(|&b| b != b'\n')).then_some(bytes.len());
        for end in memchr::memchr_iter(b'\n', bytes).chain(last) {
            let line = &bytes[from..end];
            from = end + 1;
            self.number += 1;
            if line.len() > MAX_LINE {
                return Err(self.too_long(self.number));
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            reader.line(line).map_err(|why| ImportError::Line {
                path: self.path.to_path_buf(),
                line: self.number,
                why,
            })?;
        }
        Ok(())
    }

    fn too_long(&self, line: usize) -> ImportError {
        ImportError::Line {
            path: self.path.to_path_buf(),
            line,
            why: format!(
                "the line is longer than {} MiB, which no operation needs (is this a history of operations in JSON lines?)",
                MAX_LINE >> 20
            ),
        }
    }
}

#[derive(Default)]
struct Reader {
    /// (role, process) → index into `workers`, for process numbers below `DIRECT`, one
    /// list per role (a lookup per line: a hash costs a tenth of the line).
    direct: [Vec<usize>; 4],
    /// The same for larger process numbers.
    workers_of: HashMap<(Role, u32), usize>,
    /// Each worker, and the index into `ops` of its invocation that is still open.
    workers: Vec<(Worker, Option<usize>)>,
    ops: Vec<Op>,
}

impl Reader {
    /// Takes one line: an invocation opens an operation of its process, a completion ends it.
    fn line(&mut self, text: &[u8]) -> Result<(), String> {
        let line = match fast::line(text) {
            Some(line) => line,
            None => serde_json::from_slice(text).map_err(|e| explain(text, &e))?,
        };
        let (kind, role) = operation(line.f)?;
        let process = u32::try_from(line.process).map_err(|_| {
            format!(
                "field \"process\" is {}: give a process number from 0 to {}",
                line.process,
                u32::MAX
            )
        })?;
        let at = nanoseconds("time", Some(line.time))?.unwrap_or_default();
        let read = nanoseconds("read_time", line.read_time)?;
        let write = nanoseconds("write_time", line.write_time)?;
        let w = self.worker(role, process);
        match line.kind {
            "invoke" => self.invoke(w, &line, kind, at),
            "ok" | "fail" | "info" => self.complete(w, &line, kind, at, (read, write)),
            other => Err(format!(
                "field \"type\" is {other:?}, which this checker does not know: use \"invoke\", \"ok\", \"fail\" or \"info\""
            )),
        }
    }

    /// The worker of `process` in `role`, added on its first line.
    fn worker(&mut self, role: Role, process: u32) -> usize {
        let next = self.workers.len();
        let w = self.worker_of(role, process).unwrap_or(next);
        if w == next {
            self.remember(role, process, w);
            let worker = Worker {
                role,
                index: process,
                pid: 0,
                ready_ns: 0,
                finish_ns: None,
            };
            self.workers.push((worker, None));
        }
        w
    }

    /// Opens an operation of worker `w`, which must have none open.
    fn invoke(&mut self, w: usize, line: &Line, kind: Kind, at: u64) -> Result<(), String> {
        let (worker, open) = &mut self.workers[w];
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
        if self.ops.len() >= MAX_OPS {
            return Err(format!(
                "the history holds more than {MAX_OPS} operations, the most that sim's checker holds at once (in \
                 256 MiB): check it in parts, split at a moment when no operation is open"
            ));
        }
        *open = Some(self.ops.len());
        worker.finish_ns = None;
        self.ops.push(Op::new(w as u32, kind, Outcome::Pending, at));
        Ok(())
    }

    /// Ends the open operation of worker `w` as the completion `line` says: at `at`, having
    /// read and written the stock at `(read, write)`.
    fn complete(
        &mut self,
        w: usize,
        line: &Line,
        kind: Kind,
        at: u64,
        (read, write): (Option<u64>, Option<u64>),
    ) -> Result<(), String> {
        let (worker, open) = &mut self.workers[w];
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
        let outcome = outcome(line.kind, kind, line.error);
        in_order(self.ops[i].start, at, read, write)?;
        if line.kind == "ok" && kind == Kind::Purchase && line.value.is_none() {
            return Err(
                "field \"value\" is missing: an \"ok\" purchase sold a ticket, and \"value\" is the stock it read \
                 (the ticket): give it, or make the line \"info\" if the outcome is unknown"
                    .into(),
            );
        }
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

    fn worker_of(&self, role: Role, process: u32) -> Option<usize> {
        if process < DIRECT {
            self.direct[slot(role)]
                .get(process as usize)
                .copied()
                .filter(|&w| w != usize::MAX)
        } else {
            self.workers_of.get(&(role, process)).copied()
        }
    }

    fn remember(&mut self, role: Role, process: u32, worker: usize) {
        if process < DIRECT {
            let list = &mut self.direct[slot(role)];
            if list.len() <= process as usize {
                list.resize(process as usize + 1, usize::MAX);
            }
            list[process as usize] = worker;
        } else {
            self.workers_of.insert((role, process), worker);
        }
    }

    /// The history, its workers ordered as sim's history files order them (by role name,
    /// then number) and its operations by worker, each worker's in the order written. The
    /// operations are moved in place: a second list of them would double the memory held.
    fn finish(self) -> History {
        let mut order: Vec<usize> = (0..self.workers.len()).collect();
        order.sort_by_key(|&w| (self.workers[w].0.role.name(), self.workers[w].0.index));
        let mut new_index = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new as u32;
        }
        // Where each operation goes, worker by worker, each worker's in the order written: a
        // counting sort.
        let mut start = vec![0usize; order.len() + 1];
        for op in &self.ops {
            start[new_index[op.worker as usize] as usize + 1] += 1;
        }
        for w in 1..start.len() {
            start[w] += start[w - 1];
        }
        let mut ops = self.ops;
        let mut to: Vec<u32> = ops
            .iter_mut()
            .map(|op| {
                op.worker = new_index[op.worker as usize];
                let at = &mut start[op.worker as usize];
                *at += 1;
                (*at - 1) as u32
            })
            .collect();
        // Each swap puts one operation in its place.
        for i in 0..ops.len() {
            while to[i] as usize != i {
                let j = to[i] as usize;
                ops.swap(i, j);
                to.swap(i, j);
            }
        }
        let mut workers: Vec<Option<Worker>> = self.workers.into_iter().map(|(w, _)| Some(w)).collect();
        History {
            workers: order.iter().filter_map(|&w| workers[w].take()).collect(),
            ops,
        }
    }
}

/// A reader of the lines sim itself writes, and any line of plain integers, strings without
/// escapes and nulls, ten times faster than serde: it gives up (`None`) on anything else,
/// and serde then reads the line or says what is wrong with it.
mod fast {
    use super::Line;

    /// One value of the line.
    enum Value<'a> {
        Int(i64),
        Str(&'a str),
        Null,
    }

    struct Scan<'a> {
        b: &'a [u8],
        at: usize,
    }

    impl<'a> Scan<'a> {
        fn space(&mut self) {
            while self.at < self.b.len() && matches!(self.b[self.at], b' ' | b'\t' | b'\r' | b'\n') {
                self.at += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            self.space();
            (self.b.get(self.at) == Some(&c)).then(|| self.at += 1)
        }

        /// A string's bytes, without escapes or control characters.
        fn bytes(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let from = self.at;
            // Keys and values are a few bytes: a plain scan beats memchr's set-up.
            let len = self.b[from..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            let s = &self.b[from..from + len];
            if self.b[from + len] != b'"' {
                return None;
            }
            self.at = from + len + 1;
            Some(s)
        }

        fn string(&mut self) -> Option<&'a str> {
            std::str::from_utf8(self.bytes()?).ok()
        }

        fn value(&mut self) -> Option<Value<'a>> {
            self.space();
            match *self.b.get(self.at)? {
                b'"' => self.string().map(Value::Str),
                b'n' if self.b[self.at..].starts_with(b"null") => {
                    self.at += 4;
                    Some(Value::Null)
                }
                b'-' | b'0'..=b'9' => {
                    let negative = self.b[self.at] == b'-';
                    self.at += negative as usize;
                    let from = self.at;
                    let mut n: i64 = 0;
                    while let Some(&d @ b'0'..=b'9') = self.b.get(self.at) {
                        n = n.checked_mul(10)?.checked_add((d - b'0') as i64)?;
                        self.at += 1;
                    }
                    let digits = self.at - from;
                    let next = self.b.get(self.at).copied();
                    // serde reads "-0" as a float: so does this, by giving up.
                    if digits == 0
                        || (digits > 1 && self.b[from] == b'0')
                        || (negative && n == 0)
                        || matches!(next, Some(b'.' | b'e' | b'E'))
                    {
                        return None;
                    }
                    Some(Value::Int(if negative { -n } else { n }))
                }
                _ => None,
            }
        }
    }

    pub(super) fn line(b: &[u8]) -> Option<Line<'_>> {
        let mut s = Scan { b, at: 0 };
        s.eat(b'{')?;
        let (mut process, mut kind, mut f, mut time) = (None, None, None, None);
        let mut line = Line {
            process: 0,
            kind: "",
            f: "",
            time: 0,
            value: None,
            written: None,
            read_time: None,
            write_time: None,
            error: None,
            entry: None,
        };
        let mut seen = 0u16;
        loop {
            let key = s.bytes()?;
            s.eat(b':')?;
            let value = s.value()?;
            let int = |v: &Value| match v {
                Value::Int(n) => Some(Some(*n)),
                Value::Null => Some(None),
                Value::Str(_) => None,
            };
            let bit = match key {
                b"process" => {
                    process = Some(int(&value)??);
                    1
                }
                b"type" => {
                    kind = Some(if let Value::Str(k) = value { k } else { return None });
                    2
                }
                b"f" => {
                    f = Some(if let Value::Str(k) = value { k } else { return None });
                    4
                }
                b"time" => {
                    time = Some(int(&value)??);
                    8
                }
                b"value" => {
                    line.value = int(&value)?;
                    16
                }
                b"written" => {
                    line.written = int(&value)?;
                    32
                }
                b"read_time" => {
                    line.read_time = int(&value)?;
                    64
                }
                b"write_time" => {
                    line.write_time = int(&value)?;
                    128
                }
                b"error" => {
                    line.error = match value {
                        Value::Str(e) => Some(e),
                        Value::Null => None,
                        Value::Int(_) => return None,
                    };
                    256
                }
                b"entry" => {
                    line.entry = match int(&value)? {
                        Some(n) => Some(u64::try_from(n).ok()?),
                        None => None,
                    };
                    512
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None; // a field twice: serde says so
            }
            seen |= bit;
            s.space();
            match s.b.get(s.at)? {
                b',' => s.at += 1,
                b'}' => {
                    s.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        s.space();
        if s.at != b.len() {
            return None;
        }
        line.process = process?;
        line.kind = kind?;
        line.f = f?;
        line.time = time?;
        Some(line)
    }
}

/// Refuses moments of one operation out of their order: its invocation at `invoked`, then
/// its read, its write, and its completion at `at`.
fn in_order(invoked: u64, at: u64, read: Option<u64>, write: Option<u64>) -> Result<(), String> {
    if at < invoked {
        return Err(format!(
            "field \"time\" is {at}, before its invocation at {invoked}: a completion comes after its invocation"
        ));
    }
    for (field, t) in [("read_time", read), ("write_time", write)] {
        match t {
            Some(t) if t < invoked => {
                return Err(format!(
                    "field \"{field}\" is {t}, before its invocation at {invoked}: an operation reads and writes \
                     between its invocation and its completion"
                ));
            }
            Some(t) if t > at => {
                return Err(format!(
                    "field \"{field}\" is {t}, after its completion at {at}: an operation reads and writes between \
                     its invocation and its completion"
                ));
            }
            _ => {}
        }
    }
    if let (Some(r), Some(w)) = (read, write)
        && w < r
    {
        return Err(format!(
            "field \"write_time\" is {w}, before its \"read_time\" {r}: a purchase writes the stock after reading it"
        ));
    }
    Ok(())
}

/// Process numbers below this are looked up in a list rather than a hash map.
const DIRECT: u32 = 1 << 16;

fn slot(role: Role) -> usize {
    match role {
        Role::Buyer => 0,
        Role::Seller => 1,
        Role::Producer => 2,
        _ => 3,
    }
}

/// The kind of operation an `f` names, and the role of the process that makes it.
fn operation(f: &str) -> Result<(Kind, Role), String> {
    match f {
        "purchase" => Ok((Kind::Purchase, Role::Buyer)),
        "sale" => Ok((Kind::Sale, Role::Seller)),
        "put" => Ok((Kind::Put, Role::Producer)),
        "take" => Ok((Kind::Take, Role::EntryQueue)),
        other => Err(format!(
            "field \"f\" is {other:?}, which this checker does not know: use \"purchase\", \"sale\", \"put\" or \"take\""
        )),
    }
}

/// A time `field` as nanoseconds, which cannot be negative.
fn nanoseconds(field: &str, t: Option<i64>) -> Result<Option<u64>, String> {
    t.map(|t| {
        u64::try_from(t).map_err(|_| {
            format!("field \"{field}\" is {t}, a negative count of nanoseconds: times count from an origin before the first operation")
        })
    })
    .transpose()
}

/// How an operation of `kind` ended, from its completion's `type` (`ok`, `fail`, `info`)
/// and `error`.
fn outcome(completion: &str, kind: Kind, error: Option<&str>) -> Outcome {
    match (completion, kind) {
        ("info", Kind::Purchase) if error == Some("unknown") => Outcome::Unknown,
        ("info", _) => Outcome::Pending,
        ("ok", Kind::Purchase | Kind::Sale) => Outcome::Sold,
        ("fail", Kind::Purchase | Kind::Sale) if error == Some("unreadable") => Outcome::Unreadable,
        ("fail", Kind::Purchase) if error == Some("fenced") => Outcome::Fenced,
        ("fail", Kind::Purchase) if error == Some("gave-up") => Outcome::GaveUp,
        ("fail", Kind::Purchase) if error == Some("refused") => Outcome::Failed,
        ("fail", Kind::Purchase | Kind::Sale) => Outcome::SoldOut,
        ("ok", _) => Outcome::Ok,
        ("fail", Kind::Put) => Outcome::Dropped,
        _ => Outcome::Closed,
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
        if fits {
            continue;
        }
        if let Some(range) = whole_number(v).then(|| range(field)).flatten() {
            return format!(
                "field {field:?} is {}, out of range: give an integer from {range}",
                short(v)
            );
        }
        return format!("field {field:?} is {}, not {}", short(v), want(field));
    }
    format!("{e}")
}

/// Whether `v` is a whole number, however large (JSON has no bound; serde reads one past
/// 64 bits as a float).
fn whole_number(v: &serde_json::Value) -> bool {
    v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() >= 9.2e18)
}

/// The integers a numeric field takes, in words.
fn range(field: &str) -> Option<String> {
    match field {
        "time" | "read_time" | "write_time" => Some(format!("0 to {}", i64::MAX)),
        "entry" => Some(format!("0 to {}", u64::MAX)),
        "process" => Some(format!("0 to {}", u32::MAX)),
        "value" | "written" => Some(format!("{} to {}", i64::MIN, i64::MAX)),
        _ => None,
    }
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
    fn the_fast_reader_reads_as_serde_does_or_not_at_all() {
        let lines = [
            r#"{"process": 3, "type": "ok", "f": "purchase", "time": 188211, "value": 10, "written": 9, "read_time": 1, "write_time": 2}"#,
            r#"{"process":3,"type":"fail","f":"purchase","time":5,"value":null,"error":"unreadable"}"#,
            "\t{ \"time\" : 7 , \"f\" : \"put\", \"type\": \"ok\", \"process\": 0, \"entry\": 4294967297 }  ",
            r#"{"process": -1, "type": "invoke", "f": "purchase", "time": -5, "value": -0}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 1.5}"#,
            r#"{"process": 3, "type": "invoke", "f": "purch\u0061se", "time": 1}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 1, "time": 2}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 01}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 99999999999999999999}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase"}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 1} x"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 1, "extra": 1}"#,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 1, "entry": -1}"#,
            "{}",
            "",
        ];
        for text in lines {
            let serde: Result<Line, _> = serde_json::from_slice(text.as_bytes());
            match fast::line(text.as_bytes()) {
                Some(fast) => assert_eq!(Some(fast), serde.ok(), "{text}"),
                None => assert!(serde.is_err() || text.contains("\\u"), "fast gave up on {text}"),
            }
        }
        assert!(fast::line(lines[0].as_bytes()).is_some() && fast::line(lines[2].as_bytes()).is_some());
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
