//! sim: runs a ticket sale with real processes, records every operation, and checks the
//! record for overselling, duplicate tickets, lost updates and torn reads.
//!
//! One folder per layer, each using only those before it (`tests/layers.rs` checks the
//! order; CONTRIBUTING.md walks it):

#![deny(unsafe_code)]

pub mod checker; // the judge of a history, and its streaming twin for soaks
pub mod compare; // two runs side by side
pub mod history; // the record of a trial: binary format, recorder, reader, speed, stats, JSON lines in and out
pub mod plan; // what each worker of a trial is told, and what it tells the runner back
pub mod report; // the self-contained HTML report
pub mod results; // results.json, expectations, saved runs, the printed and exported tables
pub mod runner; // runs the trials: folders, gate, deadline, faults, clean-up
pub mod scenario; // the scenario file: its types, the names of stores and strategies, validation
pub mod store; // where the stock lives: file, manager, shm, PostgreSQL, Redis
pub mod strategy; // how a purchase's read-modify-write is guarded
#[allow(unsafe_code)]
pub mod sys; // safe wrappers over every system call sim makes: the only `unsafe` of the crate
pub mod worker; // the buyer, producer and server processes, and the spawner that forks them
