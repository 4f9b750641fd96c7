//! sim: runs a ticket sale with real processes, records every operation, and checks the
//! record for overselling, duplicate tickets, lost updates and torn reads.
//!
//! The pipeline: [`scenario`] → [`runner`] → [`worker`] processes → [`history`] →
//! [`checker`] → [`results`] → [`report`].

pub mod checker;
pub mod clock;
pub mod expect;
pub mod export;
pub mod foreign;
pub mod history;
pub mod import;
pub mod ipc;
pub mod notice;
pub mod report;
pub mod results;
pub mod runner;
pub mod saved;
pub mod scenario;
pub mod speed;
pub mod store;
pub mod strategy;
pub mod table;
pub mod worker;
