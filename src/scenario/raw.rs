//! The scenario file as written: every field optional, with spans for the ones validated by
//! hand. The validator turns it into a [`super::Scenario`].

use serde::Deserialize;
use toml::Spanned;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<Spanned<String>>,
    pub(super) description: Option<String>,
    pub(super) trials: Option<Spanned<i64>>,
    pub(super) seed: Option<Spanned<i64>>,
    pub(super) strategy: Option<Spanned<toml::Value>>,
    pub(super) deadline_ms: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) stock: RawStock,
    #[serde(default)]
    pub(super) buyers: RawBuyers,
    pub(super) producers: Option<RawProducers>,
    #[serde(default)]
    pub(super) semaphore: RawSemaphore,
    #[serde(default)]
    pub(super) lock: RawLock,
    #[serde(default)]
    pub(super) transaction: RawTransaction,
    #[serde(default)]
    pub(super) faults: RawFaults,
    pub(super) expect: Option<Spanned<toml::Table>>,
    pub(super) service: Option<std::collections::BTreeMap<String, Spanned<RawService>>>,
}

/// One `[service.NAME]` table: a variant of the user's own service.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) start: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<String>>,
    pub(super) ready: Option<Spanned<String>>,
    pub(super) ready_ms: Option<Spanned<i64>>,
    pub(super) reset: Option<Spanned<String>>,
    pub(super) reset_body: Option<Spanned<String>>,
    pub(super) buy: Option<Spanned<String>>,
    pub(super) buy_body: Option<Spanned<String>>,
    pub(super) ticket: Option<Spanned<String>>,
    pub(super) sold_out: Option<Spanned<Vec<i64>>>,
    pub(super) stock: Option<Spanned<String>>,
    pub(super) stock_pointer: Option<Spanned<String>>,
    pub(super) timeout_ms: Option<Spanned<i64>>,
    pub(super) retries: Option<Spanned<i64>>,
    pub(super) idempotency_header: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    pub(super) ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStock {
    pub(super) initial: Option<Spanned<i64>>,
    pub(super) file: Option<Spanned<String>>,
    pub(super) store: Option<StoreKind>,
    pub(super) write: Option<WriteMode>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) replicas: Option<Spanned<i64>>,
    pub(super) wait_replicas: Option<Spanned<i64>>,
    pub(super) min_replicas_to_write: Option<Spanned<i64>>,
    pub(super) synchronous: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuyers {
    pub(super) count: Option<Spanned<toml::Value>>,
    pub(super) attempts: Option<Spanned<i64>>,
    pub(super) hold_us: Option<Spanned<toml::Value>>,
    pub(super) pool: Option<Spanned<i64>>,
    pub(super) pool_mode: Option<PoolMode>,
    pub(super) daemon: Option<bool>,
    pub(super) duration_ms: Option<Spanned<i64>>,
    pub(super) rate: Option<Spanned<toml::Value>>,
    pub(super) arrivals: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProducers {
    pub(super) count: Option<Spanned<i64>>,
    pub(super) entries: Option<Spanned<i64>>,
    pub(super) queue_capacity: Option<Spanned<i64>>,
    pub(super) blocking: Option<bool>,
    pub(super) joinable: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSemaphore {
    pub(super) permits: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLock {
    pub(super) scope: Option<LockScope>,
    pub(super) lease_ms: Option<Spanned<i64>>,
    pub(super) fencing: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransaction {
    pub(super) retries: Option<Spanned<i64>>,
    pub(super) isolation: Option<Isolation>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFaults {
    pub(super) kill_buyers: Option<Spanned<i64>>,
    pub(super) stop_buyers: Option<Spanned<i64>>,
    pub(super) stop_ms: Option<Spanned<i64>>,
    pub(super) kill_seller: Option<bool>,
    pub(super) kill_store: Option<Spanned<bool>>,
    pub(super) failover: Option<Spanned<bool>>,
    pub(super) lag_ms: Option<Spanned<toml::Value>>,
    pub(super) partition_ms: Option<Spanned<i64>>,
    pub(super) latency_ms: Option<Spanned<i64>>,
    pub(super) commands: Option<Vec<super::commands::RawCommand>>,
}
