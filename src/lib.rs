//! sim: runs a ticket sale with real processes, records every operation, and checks the
//! record for overselling, duplicate tickets, lost updates and torn reads.
//!
//! The pipeline: [`scenario`] → [`runner`] → [`worker`] processes → [`history`] →
//! [`checker`] → [`results`] → [`report`]; [`compare`] sets two runs' results side by side.

pub mod checker;
pub mod clock;
pub mod compare;
pub mod expect;
pub mod history;
pub mod ipc;
pub mod notice;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod store;
pub mod strategy;
pub mod table;
pub mod tabulate;
pub mod worker;
