//! sim: runs a ticket sale with real processes, records every operation, and checks the
//! record for overselling, duplicate tickets, lost updates and torn reads.

pub mod checker;
pub mod clock;
pub mod history;
