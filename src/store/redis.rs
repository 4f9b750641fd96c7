//! The `redis` store: not yet built (issue 13, part 2).

use std::io;

use super::{Stock, Store};
use crate::history::Role;
use crate::plan::{Fixture, TrialPlan};

/// The `redis` store.
pub struct RedisStore;

impl Store for RedisStore {
    fn prepare(&self, _plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Err(io::Error::other("the redis store is not built yet"))
    }

    fn open(&self, _plan: &TrialPlan, _role: Role, _index: u32) -> io::Result<Box<dyn Stock>> {
        Err(io::Error::other("the redis store is not built yet"))
    }
}
