//! Writes a history as operations, for other tools: JSON lines as docs/reference/history.md
//! describes them, or the same as Jepsen EDN maps.
//!
//! Each operation becomes an invocation at its start and a completion at its end (`ok`,
//! `fail`, or `info` when its process died inside it), all in time order. `process` is the
//! worker's number within its role, as its label says ("buyer 3" is process 3); the role
//! follows from `f`. Written by hand with `itoa` rather than through serde: a million
//! operations is two million lines.

use std::io::{self, Write};

use crate::history::{History, Kind, Op, Outcome};

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// One Jepsen EDN map per line.
    Edn,
}

impl Format {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
        }
    }
}

/// Writes every operation of `history` to `out`, invocations and completions in time order.
pub fn write(history: &History, format: Format, out: &mut impl Write) -> io::Result<()> {
    // Each event as one key, (time, op, completion?): at the same moment, a process's
    // completion comes before its next invocation, and an invocation before its own
    // completion. Laid out worker by worker, each worker's events are already in order: the
    // stable sort finds those runs and only merges them.
    // A history whose times run backwards (an end before its start, an operation begun
    // before the last one of its process ended) still goes out in its process's order: each
    // event sorts no earlier than the one before it in that process. The times written are
    // the recorded ones.
    let mut events: Vec<u128> = Vec::with_capacity(history.ops.len() * 2);
    let mut floors = vec![0u64; history.workers.len()];
    let mut others: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        let floor = match floors.get_mut(op.worker as usize) {
            Some(floor) => floor,
            None => others.entry(op.worker).or_default(),
        };
        let mut key = |t: u64, done: bool| {
            *floor = (*floor).max(t);
            (*floor as u128) << 64 | (i as u128) << 1 | done as u128
        };
        events.push(key(op.start, false));
        events.push(key(completed_at(op), true));
    }
    events.sort();
    let mut buffer = Vec::with_capacity(1 << 20);
    for key in events {
        let (i, done) = ((key as u64 >> 1) as usize, key & 1 == 1);
        let op = &history.ops[i];
        let time = if done { completed_at(op) } else { op.start };
        let process = history.workers.get(op.worker as usize).map_or(op.worker, |w| w.index);
        let fields = fields(op, process, time, done);
        match format {
            Format::Jsonl => jsonl(&fields, &mut buffer),
            Format::Edn => edn(&fields, &mut buffer),
        }
        if buffer.len() >= 1 << 20 {
            out.write_all(&buffer)?;
            buffer.clear();
        }
    }
    out.write_all(&buffer)?;
    out.flush()
}

/// When an operation's completion is written: its end, or for one that never completed
/// (`info`), the last moment it recorded.
fn completed_at(op: &Op) -> u64 {
    op.end().unwrap_or_else(|| op.latest())
}

/// One line's fields, before they are spelled in a format.
struct Fields {
    process: u32,
    kind: &'static str,
    f: &'static str,
    time: u64,
    /// The stock values that follow, those recorded.
    values: [(&'static str, Option<i64>); 2],
    /// The times and the entry that follow, those recorded.
    moments: [(&'static str, Option<u64>); 3],
    /// `value` is written as null: the stock held no number.
    null_value: bool,
    error: Option<&'static str>,
}

impl Fields {
    /// Each number recorded, stock values then moments, by name and as digits.
    fn numbers(&self, mut each: impl FnMut(&str, &str)) {
        let mut digits = itoa::Buffer::new();
        for (name, v) in self.values {
            if let Some(v) = v {
                each(name, digits.format(v));
            }
        }
        for (name, v) in self.moments {
            if let Some(v) = v {
                each(name, digits.format(v));
            }
        }
    }
}

fn fields(op: &Op, process: u32, time: u64, done: bool) -> Fields {
    let f = match op.kind {
        Kind::Purchase => "purchase",
        Kind::Sale => "sale",
        Kind::Put => "put",
        Kind::Take => "take",
    };
    if !done {
        return Fields {
            process,
            kind: "invoke",
            f,
            time,
            values: [("", None); 2],
            moments: [("", None); 3],
            null_value: false,
            error: None,
        };
    }
    let (kind, error) = match op.outcome {
        Outcome::Pending => ("info", None),
        Outcome::Sold | Outcome::Ok => ("ok", None),
        Outcome::SoldOut => ("fail", None),
        Outcome::Unreadable => ("fail", Some("unreadable")),
        Outcome::Dropped => ("fail", Some("dropped")),
        Outcome::Closed => ("fail", Some("closed")),
        Outcome::Fenced => ("fail", Some("fenced")),
        Outcome::GaveUp => ("fail", Some("gave-up")),
        Outcome::Failed => ("fail", Some("refused")),
        Outcome::Unknown => ("info", Some("unknown")),
    };
    let unreadable = op.outcome == Outcome::Unreadable;
    Fields {
        process,
        kind,
        f,
        time,
        values: [
            ("value", if unreadable { None } else { op.value() }),
            ("written", op.written()),
        ],
        moments: [
            ("read_time", op.read()),
            ("write_time", op.write()),
            ("entry", op.entry()),
        ],
        null_value: unreadable,
        error,
    }
}

fn jsonl(f: &Fields, out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"process\": ");
    out.extend_from_slice(n.format(f.process).as_bytes());
    out.extend_from_slice(b", \"type\": \"");
    out.extend_from_slice(f.kind.as_bytes());
    out.extend_from_slice(b"\", \"f\": \"");
    out.extend_from_slice(f.f.as_bytes());
    out.extend_from_slice(b"\", \"time\": ");
    out.extend_from_slice(n.format(f.time).as_bytes());
    if f.null_value {
        out.extend_from_slice(b", \"value\": null");
    }
    f.numbers(|name, digits| {
        out.extend_from_slice(b", \"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\": ");
        out.extend_from_slice(digits.as_bytes());
    });
    if let Some(e) = f.error {
        out.extend_from_slice(b", \"error\": \"");
        out.extend_from_slice(e.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"}\n");
}

fn edn(f: &Fields, out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{:process ");
    out.extend_from_slice(n.format(f.process).as_bytes());
    out.extend_from_slice(b", :type :");
    out.extend_from_slice(f.kind.as_bytes());
    out.extend_from_slice(b", :f :");
    out.extend_from_slice(f.f.as_bytes());
    out.extend_from_slice(b", :time ");
    out.extend_from_slice(n.format(f.time).as_bytes());
    if f.null_value {
        out.extend_from_slice(b", :value nil");
    }
    f.numbers(|name, digits| {
        out.extend_from_slice(b", :");
        // EDN keywords take dashes where JSON keys take underscores.
        out.extend(name.bytes().map(|b| if b == b'_' { b'-' } else { b }));
        out.push(b' ');
        out.extend_from_slice(digits.as_bytes());
    });
    if let Some(e) = f.error {
        out.extend_from_slice(b", :error :");
        out.extend_from_slice(e.as_bytes());
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Role, Worker};

    fn history() -> History {
        let worker = |role, index| Worker {
            role,
            index,
            pid: 1,
            ready_ns: 0,
            finish_ns: Some(1_000),
        };
        History {
            workers: vec![worker(Role::Buyer, 3), worker(Role::Buyer, 4), worker(Role::Buyer, 5)],
            ops: vec![
                Op::new(0, Kind::Purchase, Outcome::Sold, 100)
                    .with_read(Some(110))
                    .with_write(Some(180))
                    .with_end(Some(188))
                    .with_value(Some(10))
                    .with_written(Some(9)),
                Op::new(1, Kind::Purchase, Outcome::Unreadable, 150).with_end(Some(190)),
                Op::new(2, Kind::Purchase, Outcome::Pending, 200)
                    .with_read(Some(210))
                    .with_value(Some(9)),
            ],
        }
    }

    #[test]
    fn json_lines_in_time_order() {
        let mut out = Vec::new();
        write(&history(), Format::Jsonl, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"process": 3, "type": "invoke", "f": "purchase", "time": 100}
{"process": 4, "type": "invoke", "f": "purchase", "time": 150}
{"process": 3, "type": "ok", "f": "purchase", "time": 188, "value": 10, "written": 9, "read_time": 110, "write_time": 180}
{"process": 4, "type": "fail", "f": "purchase", "time": 190, "value": null, "error": "unreadable"}
{"process": 5, "type": "invoke", "f": "purchase", "time": 200}
{"process": 5, "type": "info", "f": "purchase", "time": 210, "value": 9, "read_time": 210}
"#
        );
        // And back: the same history.
        let back = crate::history::import::parse(std::path::Path::new("x"), text.as_bytes()).unwrap();
        assert_eq!(back.ops, history().ops);
    }

    #[test]
    fn a_process_that_invokes_as_its_last_call_completes_keeps_its_order() {
        let mut h = history();
        // Buyer 3 invokes again the very nanosecond its first purchase completed, and that
        // second purchase takes no time at all.
        h.ops.insert(
            1,
            Op::new(0, Kind::Purchase, Outcome::SoldOut, 188)
                .with_end(Some(188))
                .with_value(Some(0)),
        );
        let mut out = Vec::new();
        write(&h, Format::Jsonl, &mut out).unwrap();
        let back = crate::history::import::parse(std::path::Path::new("x"), &out).unwrap();
        assert_eq!(back.ops, h.ops);
    }

    #[test]
    fn edn_maps_for_jepsen() {
        let mut out = Vec::new();
        write(&history(), Format::Edn, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "{:process 3, :type :ok, :f :purchase, :time 188, :value 10, :written 9, :read-time 110, :write-time 180}"
        );
        assert_eq!(
            lines[3],
            "{:process 4, :type :fail, :f :purchase, :time 190, :value nil, :error :unreadable}"
        );
    }
}
