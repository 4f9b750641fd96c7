//! sim: runs a ticket sale with real processes, records every operation, and checks the
//! record for overselling, duplicate tickets, lost updates and torn reads.
//!
//! The layers, each using only those before it (README.md, "Layout", has the map):
//! - [`clock`] → [`history`] → [`checker`] → [`stream`]: the record and its judge (and the
//!   judge of a soak, which takes its history a segment at a time);
//! - [`scenario`] → [`plan`] → [`store`] and [`strategy`] → [`worker`] → [`runner`] →
//!   [`results`] → [`report`]: from the file to the page;
//! - beside them, the small pieces every layer may use: [`shm`] (all the `unsafe` of shared
//!   memory), [`ipc`], [`notice`]; [`speed`] (throughput and latency, measured outside the
//!   checker); and [`expect`], [`table`], [`saved`], [`export`], [`import`] and [`foreign`],
//!   which read [`results`] or histories;
//! - on top: [`tabulate`] (the Markdown and CSV exports) and [`compare`] (two runs side by
//!   side), which read [`results`] and draw with [`report`].

pub mod checker;
pub mod clock;
pub mod compare;
pub mod expect;
pub mod export;
pub mod foreign;
pub mod history;
pub mod import;
pub mod ipc;
pub mod notice;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod saved;
pub mod scenario;
pub mod shm;
pub mod speed;
pub mod store;
pub mod strategy;
pub mod stream;
pub mod table;
pub mod tabulate;
pub mod worker;
