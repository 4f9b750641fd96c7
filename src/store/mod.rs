//! Stores: where the stock lives. Every strategy works with every store.

mod file;
pub mod manager;

use std::io;

pub use file::FileStock;

use crate::history::Role;
use crate::scenario::StoreKind;
use crate::worker::TrialPlan;

/// Opens the plan's store, as the view of the stock of one worker.
pub fn open(plan: &TrialPlan, role: Role, index: u32) -> io::Result<Box<dyn Stock>> {
    Ok(match plan.store {
        StoreKind::File => Box::new(FileStock::open(&plan.stock_path, plan.write)?),
        StoreKind::Manager => {
            let name = format!("{}.{}{index}.stock", plan.socket_prefix, role.name());
            Box::new(manager::ManagerStock::connect(&name, &plan.manager_socket)?)
        }
    })
}

/// What a read of the stock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Value(i64),
    /// Empty or not a number: a torn read.
    Unreadable,
}

/// The stock as one process sees it.
pub trait Stock {
    fn read(&mut self) -> io::Result<Reading>;
    fn write(&mut self, value: i64) -> io::Result<()>;
}

/// Parses the stock file's text: one decimal integer, optionally followed by a newline.
pub fn parse(bytes: &[u8]) -> Reading {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return Reading::Unreadable;
    }
    Reading::Value(text.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_number_parses() {
        assert_eq!(parse(b"10"), Reading::Value(10));
        assert_eq!(parse(b"0\n"), Reading::Value(0));
        for torn in [&b""[..], b"\n", b"1 0", b"-1", b"abc", b"99999999999999999999", b"1\0"] {
            assert_eq!(parse(torn), Reading::Unreadable, "{torn:?}");
        }
    }
}
