//! Validation: the raw file turned into a [`Scenario`], one function per table, each error
//! naming the file, the line and the field.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::raw::*;
use super::*;

/// Reads and validates a scenario file.
pub fn load(path: &Path, limits: Limits) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("cannot read the scenario file: {e}; give the path of a .toml scenario (see scenarios/)"),
    })?;
    parse(path, &text, limits)
}

/// Validates scenario text; `path` is only used to name the file in errors and default the name.
pub fn parse(path: &Path, text: &str, limits: Limits) -> Result<Scenario, ScenarioError> {
    let v = Validator { path, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        // toml's message carries the line, a caret snippet and what was expected.
        let line = e.span().map(|s| v.line(s.start));
        ScenarioError {
            file: path.to_path_buf(),
            line,
            field: None,
            message: e.message().trim_end().to_string() + &v.snippet(e.span()),
        }
    })?;
    v.scenario(raw, limits)
}

/// Turns the raw file into a scenario, naming the file, line and field of each error.
pub(super) struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    fn snippet(&self, span: Option<Range<usize>>) -> String {
        let Some(span) = span else { return String::new() };
        let line = self.line(span.start);
        // Quoted with its secrets masked: a url's password, a header's value.
        format!(" (line {line}: `{}`)", super::secret::masked_line(self.text, line))
    }

    pub(super) fn error(&self, span: Option<Range<usize>>, field: &str, message: String) -> ScenarioError {
        ScenarioError {
            file: self.path.to_path_buf(),
            line: span.map(|s| self.line(s.start)),
            field: Some(field.to_string()),
            message,
        }
    }

    /// A whole number within bounds, or its default.
    pub(super) fn number(
        &self,
        value: &Option<Spanned<i64>>,
        field: &str,
        default: u64,
        min: u64,
        max: u64,
        hint: &str,
    ) -> Result<u64, ScenarioError> {
        let Some(value) = value else { return Ok(default) };
        let n = *value.get_ref();
        if n < min as i64 || n as u64 > max {
            return Err(self.error(
                Some(value.span()),
                field,
                format!("{n} is out of bounds: it must be a whole number from {min} to {max}{hint}"),
            ));
        }
        Ok(n as u64)
    }

    /// A whole number within bounds, or a list of them (a sweep), or the default.
    fn numbers(
        &self,
        value: &Option<Spanned<toml::Value>>,
        field: &str,
        default: u64,
        min: u64,
        max: u64,
        hint: &str,
    ) -> Result<Vec<u64>, ScenarioError> {
        let Some(value) = value else { return Ok(vec![default]) };
        let span = Some(value.span());
        let items: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) if !items.is_empty() && items.len() <= 50 => items.iter().collect(),
            toml::Value::Array(_) => {
                return Err(self.error(span, field, "a sweep lists from 1 to 50 values".into()));
            }
            one => vec![one],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let n = match item.as_integer() {
                Some(n) if n >= min as i64 && n as u64 <= max => n as u64,
                Some(n) => {
                    return Err(self.error(
                        span,
                        field,
                        format!("{n} is out of bounds: it must be a whole number from {min} to {max}{hint}"),
                    ));
                }
                None => {
                    return Err(self.error(
                        span,
                        field,
                        format!("{item} is not a whole number: give one, or a list of them to sweep over"),
                    ));
                }
            };
            if out.contains(&n) {
                return Err(self.error(span, field, format!("{n} is listed twice")));
            }
            out.push(n);
        }
        Ok(out)
    }

    fn scenario(&self, raw: RawScenario, limits: Limits) -> Result<Scenario, ScenarioError> {
        let name = self.name(&raw.name)?;
        let trials = self.number(&raw.trials, "trials", 10, 1, 100_000, "")? as u32;
        let seed = self.seed(&raw.seed)?;
        let stock = self.stock(&raw.stock)?;
        let (strategies, service) = match stock.store {
            StoreKind::Service => {
                let (strategies, service) = super::service::variants(self, &raw)?;
                super::service::refuse_the_rest(self, &raw)?;
                (strategies, service)
            }
            store => {
                super::service::refuse_tables(self, &raw, store.name())?;
                (self.strategies(&raw.strategy)?, BTreeMap::new())
            }
        };
        let deadline_ms = self.number(&raw.deadline_ms, "deadline_ms", 60_000, 1, 3_600_000, " (one hour)")?;
        for &strategy in &strategies {
            if let Err(why) = check_pairing(
                strategy,
                stock.store,
                raw.lock.fencing.as_ref().is_some_and(|f| *f.get_ref()),
            ) {
                return Err(self.error(raw.strategy.as_ref().map(|v| v.span()), "strategy", why));
            }
        }
        let max = limits.max_processes;
        let (mut buyers, counts, sweep) = self.buyers(&raw, &strategies, max)?;
        let producers = self.producers(&raw, &buyers, max)?;
        let semaphore = Semaphore {
            permits: self.number(&raw.semaphore.permits, "semaphore.permits", 1, 1, 10_000, "")? as u32,
        };
        let lock = self.lock(&raw.lock, &strategies)?;
        let transaction = Transaction {
            retries: self.number(&raw.transaction.retries, "transaction.retries", 100, 0, 1_000_000, "")? as u32,
            isolation: raw.transaction.isolation.unwrap_or_default(),
        };
        let faults = self.faults(&raw.faults, buyers.count, &stock)?;
        let lags = self.lags(&raw.faults)?;
        let sweep = match (sweep, lags.len() > 1) {
            (sweep, false) => sweep,
            (sweep, true) => Some(Sweep {
                lag_ms: lags,
                ..sweep.unwrap_or_else(|| Sweep {
                    count: counts.clone(),
                    hold_us: vec![buyers.hold_us],
                    lag_ms: Vec::new(),
                })
            }),
        };
        let expect = self.expect(&raw.expect, &strategies, stock.store)?;
        buyers.count = counts[0];
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            trials,
            seed,
            strategies,
            deadline_ms,
            stock,
            buyers,
            producers,
            semaphore,
            lock,
            transaction,
            faults,
            expect,
            sweep,
            service,
        })
    }

    /// `name`, which names the report folder; the file's stem when it is not given.
    fn name(&self, value: &Option<Spanned<String>>) -> Result<String, ScenarioError> {
        let Some(name) = value else {
            return Ok(self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()));
        };
        let n = name.get_ref();
        // Characters, not bytes, are what a person counts; a folder's name takes 255 bytes.
        if n.is_empty()
            || n.chars().count() > 100
            || n.len() > 255
            || !n.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c))
            || n.starts_with('.')
        {
            return Err(self.error(
                Some(name.span()),
                "name",
                format!(
                    "{n:?} cannot name the report folder: use 1 to 100 letters, digits, '-', '_' or '.' (not first), \
                     at most 255 bytes in UTF-8"
                ),
            ));
        }
        Ok(n.clone())
    }

    fn seed(&self, value: &Option<Spanned<i64>>) -> Result<u64, ScenarioError> {
        match value {
            Some(s) if *s.get_ref() < 0 => Err(self.error(
                Some(s.span()),
                "seed",
                format!("{} is negative: a seed is a whole number from 0 up", s.get_ref()),
            )),
            Some(s) => Ok(*s.get_ref() as u64),
            None => Ok(42),
        }
    }

    /// `[stock]`.
    fn stock(&self, raw: &RawStock) -> Result<Stock, ScenarioError> {
        let store = raw.store.unwrap_or(StoreKind::File);
        let url = self.url(&raw.url, store)?;
        let mut stock = Stock {
            initial: self.number(&raw.initial, "stock.initial", 10, 0, 1_000_000_000_000, "")? as i64,
            file: self.stock_file(&raw.file)?,
            store,
            write: raw.write.unwrap_or(WriteMode::Truncate),
            url,
            replicas: 0,
            wait_replicas: 0,
            min_replicas_to_write: 0,
            synchronous: Synchronous::Off,
        };
        self.replication(raw, &mut stock)?;
        Ok(stock)
    }

    /// `[stock]`'s replication fields: `replicas` for a throwaway server of its own,
    /// `wait_replicas` and `min_replicas_to_write` for Redis, `synchronous` for PostgreSQL.
    fn replication(&self, raw: &RawStock, stock: &mut Stock) -> Result<(), ScenarioError> {
        let store = stock.store;
        let only = |field: &str, span: Range<usize>, kind: StoreKind| {
            self.error(
                Some(span),
                field,
                format!("{field} is for store \"{kind}\", and this scenario's store is \"{store}\": drop it"),
            )
        };
        if let Some(r) = &raw.replicas {
            if store.url_scheme().is_none() {
                return Err(self.error(
                    Some(r.span()),
                    "stock.replicas",
                    format!("store \"{store}\" keeps its stock on this machine and has no replicas: replicas are for \"postgres\" or \"redis\""),
                ));
            }
            if stock.url.is_some() && *r.get_ref() != 0 {
                return Err(self.error(
                    Some(r.span()),
                    "stock.replicas",
                    "with [stock] url your own store is used as it is, replicas and all: drop replicas, or the url for a throwaway primary with replicas".into(),
                ));
            }
        }
        stock.replicas = self.number(&raw.replicas, "stock.replicas", 0, 0, 8, " (servers on this machine)")? as u32;
        let replicas_hint = format!(" (stock.replicas = {})", stock.replicas);
        if let Some(w) = &raw.wait_replicas {
            if store != StoreKind::Redis {
                return Err(only("stock.wait_replicas", w.span(), StoreKind::Redis));
            }
            let most = match stock.url {
                Some(_) => 100,
                None => stock.replicas as u64,
            };
            stock.wait_replicas =
                self.number(&raw.wait_replicas, "stock.wait_replicas", 0, 0, most, &replicas_hint)? as u32;
        }
        if let Some(m) = &raw.min_replicas_to_write {
            if store != StoreKind::Redis {
                return Err(only("stock.min_replicas_to_write", m.span(), StoreKind::Redis));
            }
            if stock.url.is_some() {
                return Err(self.error(
                    Some(m.span()),
                    "stock.min_replicas_to_write",
                    "min_replicas_to_write is set on the primary sim starts; with [stock] url, set min-replicas-to-write on your own primary, and drop it here".into(),
                ));
            }
            stock.min_replicas_to_write = self.number(
                &raw.min_replicas_to_write,
                "stock.min_replicas_to_write",
                0,
                0,
                stock.replicas as u64,
                &replicas_hint,
            )? as u32;
        }
        if let Some(sync) = &raw.synchronous {
            if store != StoreKind::Postgres {
                return Err(only("stock.synchronous", sync.span(), StoreKind::Postgres));
            }
            let Ok(value) = sync.get_ref().parse::<Synchronous>() else {
                return Err(self.error(
                    Some(sync.span()),
                    "stock.synchronous",
                    format!(
                        "{:?} is not a way to commit: use \"off\", \"on\" or \"remote_apply\"",
                        sync.get_ref()
                    ),
                ));
            };
            if value != Synchronous::Off && stock.replicas == 0 {
                return Err(self.error(
                    Some(sync.span()),
                    "stock.synchronous",
                    "a synchronous commit waits for a standby, and there is none: set stock.replicas, or synchronous = \"off\"".into(),
                ));
            }
            stock.synchronous = value;
        }
        Ok(())
    }

    /// `[buyers]`, with the largest count of a sweep in `count` (bounds that depend on the
    /// count hold for the largest one), the counts to sweep over, and the sweep if there is one.
    fn buyers(
        &self,
        raw: &RawScenario,
        strategies: &[StrategyName],
        max: u64,
    ) -> Result<(Buyers, Vec<u32>, Option<Sweep>), ScenarioError> {
        let lift = lift(max);
        let b = &raw.buyers;
        let counts: Vec<u32> = self
            .numbers(&b.count, "buyers.count", 30, 1, max, &lift)?
            .into_iter()
            .map(|n| n as u32)
            .collect();
        // A service's race window is its own: sim holds nothing between read and write.
        let hold_default = if raw.stock.store == Some(StoreKind::Service) {
            0
        } else {
            500
        };
        let holds = self.numbers(
            &b.hold_us,
            "buyers.hold_us",
            hold_default,
            0,
            10_000_000,
            " (ten seconds)",
        )?;
        let sweep = (counts.len() > 1 || holds.len() > 1).then(|| Sweep {
            count: counts.clone(),
            hold_us: holds.clone(),
            lag_ms: Vec::new(),
        });
        let (rate, arrivals) = self.rate(raw)?;
        let buyers = Buyers {
            count: counts.iter().copied().max().unwrap_or(30),
            attempts: self.number(&b.attempts, "buyers.attempts", 1, 1, 100_000_000, "")? as u32,
            hold_us: holds[0],
            pool: match &b.pool {
                Some(_) => Some(self.number(&b.pool, "buyers.pool", 1, 1, max, &lift)? as u32),
                None => None,
            },
            pool_mode: b.pool_mode.unwrap_or(PoolMode::Async),
            daemon: b.daemon.unwrap_or(false),
            duration_ms: match &b.duration_ms {
                Some(_) => Some(self.number(&b.duration_ms, "buyers.duration_ms", 1, 1, 86_400_000, " (a day)")?),
                None => None,
            },
            rate,
            arrivals,
        };
        if b.duration_ms.is_some()
            && let Some(kill) = raw.faults.kill_store.as_ref().filter(|k| *k.get_ref())
        {
            return Err(self.error(
                Some(kill.span()),
                "faults.kill_store",
                "a soak runs without faults: a killed store would end its buyers before their time is up, \
                 and a soak is judged only when it ends on time; drop kill_store, or give [buyers] attempts \
                 instead of duration_ms"
                    .into(),
            ));
        }
        if let Some(d) = &b.duration_ms
            && let Some(why) = soak_refusal(raw, strategies)
        {
            return Err(self.error(Some(d.span()), "buyers.duration_ms", why.into()));
        }
        if buyers.count as u64 * buyers.attempts as u64 > 100_000_000 {
            return Err(self.error(
                b.attempts.as_ref().map(|a| a.span()),
                "buyers.attempts",
                format!(
                    "{} buyers × {} attempts is more than 100,000,000 purchases in one trial: lower either",
                    buyers.count, buyers.attempts
                ),
            ));
        }
        Ok((buyers, counts, sweep))
    }

    /// `[buyers] rate` and `arrivals`: an open loop, for store `service` alone.
    fn rate(&self, raw: &RawScenario) -> Result<(Option<f64>, Arrivals), ScenarioError> {
        let b = &raw.buyers;
        let arrivals = match &b.arrivals {
            None => Arrivals::default(),
            Some(a) => a.get_ref().parse().map_err(|_| {
                self.error(
                    Some(a.span()),
                    "buyers.arrivals",
                    format!(
                        "{:?} is not a way to space purchases: use \"constant\" or \"poisson\"",
                        a.get_ref()
                    ),
                )
            })?,
        };
        let Some(value) = &b.rate else {
            if let Some(a) = &b.arrivals {
                return Err(self.error(
                    Some(a.span()),
                    "buyers.arrivals",
                    "spaces an open loop's purchases: give `rate` too".into(),
                ));
            }
            return Ok((None, arrivals));
        };
        let span = Some(value.span());
        let rate = match value.get_ref() {
            toml::Value::Integer(n) => *n as f64,
            toml::Value::Float(f) => *f,
            other => {
                return Err(self.error(
                    span,
                    "buyers.rate",
                    format!("{other} is not a number of purchases per second"),
                ));
            }
        };
        if !(0.0..=10_000_000.0).contains(&rate) {
            return Err(self.error(
                span,
                "buyers.rate",
                format!("{rate} is out of bounds: from 0 (a closed loop) to 10,000,000 purchases/s"),
            ));
        }
        if rate > 0.0 && raw.stock.store != Some(StoreKind::Service) {
            return Err(self.error(
                span,
                "buyers.rate",
                "an open loop sends purchases to your own service on schedule: it needs [stock] store = \"service\""
                    .into(),
            ));
        }
        Ok(((rate > 0.0).then_some(rate), arrivals))
    }

    /// `[producers]`, bounded with the buyers they feed.
    fn producers(&self, raw: &RawScenario, buyers: &Buyers, max: u64) -> Result<Option<Producers>, ScenarioError> {
        let lift = lift(max);
        let Some(raw_p) = &raw.producers else {
            if buyers.daemon {
                let message = "daemon buyers are ended when every producer has finished, and there are no producers: \
                               add a [producers] table or drop daemon";
                return Err(self.error(None, "buyers.daemon", message.into()));
            }
            return Ok(None);
        };
        let p = Producers {
            count: self.number(&raw_p.count, "producers.count", 1, 1, max, &lift)? as u32,
            entries: self.number(&raw_p.entries, "producers.entries", 1, 1, 10_000_000, "")? as u32,
            queue_capacity: self.number(&raw_p.queue_capacity, "producers.queue_capacity", 1, 1, 10_000_000, "")?
                as u32,
            blocking: raw_p.blocking.unwrap_or(true),
            joinable: raw_p.joinable.unwrap_or(false),
        };
        if p.count as u64 * p.entries as u64 > 100_000_000 {
            return Err(self.error(
                raw_p.entries.as_ref().map(|e| e.span()),
                "producers.entries",
                format!(
                    "{} producers × {} entries is more than 100,000,000: lower either",
                    p.count, p.entries
                ),
            ));
        }
        // The bound is on the processes the user asked for: buyers (or the pool's) and
        // producers. sim's own helpers (the spawner, a seller, the entry queue, a manager)
        // are a few more whatever the scenario, and do not count against it.
        let (buyer_field, buyer_processes) = match buyers.pool {
            Some(pool) => ("buyers.pool", pool),
            None => ("buyers.count", buyers.count),
        };
        let processes = buyer_processes as u64 + p.count as u64;
        if processes > max {
            return Err(self.error(
                raw_p.count.as_ref().map(|c| c.span()),
                "producers.count",
                format!(
                    "{} producers with {buyer_processes} buyer processes (`{buyer_field}`) make {processes} worker processes{lift}: lower either",
                    p.count
                ),
            ));
        }
        Ok(Some(p))
    }

    /// `[faults] lag_ms`: one lag, or a list of them to sweep over; only with a failover.
    fn lags(&self, f: &RawFaults) -> Result<Vec<u64>, ScenarioError> {
        if let Some(lag) = &f.lag_ms
            && f.failover.as_ref().is_none_or(|on| !*on.get_ref())
        {
            return Err(self.error(
                Some(lag.span()),
                "faults.lag_ms",
                "lag_ms is how long the replicas are cut off before a failover, and failover is off: \
                 set failover = true, or drop lag_ms"
                    .into(),
            ));
        }
        self.numbers(&f.lag_ms, "faults.lag_ms", DEFAULT_LAG_MS, 0, 600_000, " (ten minutes)")
    }

    /// `[faults]`, where no more buyers are hit than there are (`count`, the largest of a sweep).
    fn faults(&self, f: &RawFaults, count: u32, stock: &Stock) -> Result<Faults, ScenarioError> {
        let buyers = " (the number of buyers)";
        Ok(Faults {
            kill_buyers: self.number(&f.kill_buyers, "faults.kill_buyers", 0, 0, count as u64, buyers)? as u32,
            stop_buyers: self.number(&f.stop_buyers, "faults.stop_buyers", 0, 0, count as u64, buyers)? as u32,
            stop_ms: self.number(&f.stop_ms, "faults.stop_ms", 200, 0, 600_000, " (ten minutes)")?,
            kill_seller: f.kill_seller.unwrap_or(false),
            failover: self.failover(f, stock)?,
            lag_ms: self.lags(f)?[0],
            partition_ms: self.link_fault(f, &f.partition_ms, "faults.partition_ms", 600_000, stock)?,
            latency_ms: self.link_fault(f, &f.latency_ms, "faults.latency_ms", 10_000, stock)?,
            commands: self.commands(f.commands.as_deref().unwrap_or_default())?,
            kill_store: match &f.kill_store {
                Some(kill) if *kill.get_ref() && (stock.store.url_scheme().is_none() || stock.url.is_some()) => {
                    return Err(self.error(
                        Some(kill.span()),
                        "faults.kill_store",
                        format!(
                            "kill_store kills the throwaway server sim starts for store \"postgres\" or \"redis\"; \
                             store \"{}\"{} has none: use one of those stores without [stock] url, or drop kill_store",
                            stock.store,
                            if stock.url.is_some() { " with a url" } else { "" }
                        ),
                    ));
                }
                Some(kill) if *kill.get_ref() && stock.replicas > 0 => {
                    return Err(self.error(
                        Some(kill.span()),
                        "faults.kill_store",
                        "kill_store kills a single throwaway server, and this one is a primary with replicas: use                          failover = true to kill its primary and promote a replica, or drop kill_store"
                            .into(),
                    ));
                }
                Some(kill) => *kill.get_ref(),
                None => false,
            },
        })
    }

    /// `[faults] failover`: a throwaway primary with replicas to promote, and no `kill_store`.
    fn failover(&self, f: &RawFaults, stock: &Stock) -> Result<bool, ScenarioError> {
        let Some(on) = &f.failover else { return Ok(false) };
        if !*on.get_ref() {
            return Ok(false);
        }
        let why = if stock.url.is_some() {
            Some(url_faults(f))
        } else if stock.replicas == 0 {
            Some("a failover promotes a replica, and there is none: set [stock] replicas = 1 or more (store \"redis\" or \"postgres\")".to_string())
        } else if f.kill_store.as_ref().is_some_and(|k| *k.get_ref()) {
            Some(
                "kill_store kills the primary with no failover after it: keep one of failover and kill_store"
                    .to_string(),
            )
        } else {
            None
        };
        match why {
            Some(why) => Err(self.error(Some(on.span()), "faults.failover", why)),
            None => Ok(true),
        }
    }

    /// A fault on the links to a throwaway server (`partition_ms`, `latency_ms`): how long,
    /// at most `max`.
    fn link_fault(
        &self,
        f: &RawFaults,
        value: &Option<Spanned<i64>>,
        field: &str,
        max: u64,
        stock: &Stock,
    ) -> Result<u64, ScenarioError> {
        if let Some(v) = value
            && *v.get_ref() != 0
        {
            if stock.store == StoreKind::Postgres && stock.replicas == 0 && stock.url.is_none() {
                return Err(self.error(
                    Some(v.span()),
                    field,
                    format!(
                        "{field} acts on the links to the servers sim starts behind its fault proxy, which a \
                         PostgreSQL primary with standbys has and a single server has not: set [stock] replicas = 1 \
                         or more, or drop it"
                    ),
                ));
            }
            if !matches!(stock.store, StoreKind::Redis | StoreKind::Postgres) {
                return Err(self.error(
                    Some(v.span()),
                    field,
                    format!(
                        "{field} acts on the links to the servers sim starts behind its fault proxy, which stores \
                         \"redis\" and \"postgres\" have and store \"{}\" has not: use one of those, or drop it",
                        stock.store
                    ),
                ));
            }
            if stock.url.is_some() {
                return Err(self.error(Some(v.span()), field, url_faults(f)));
            }
        }
        self.number(value, field, 0, 0, max, "")
    }

    fn strategies(&self, value: &Option<Spanned<toml::Value>>) -> Result<Vec<StrategyName>, ScenarioError> {
        let Some(value) = value else {
            return Ok(vec![StrategyName::None]);
        };
        let span = Some(value.span());
        let names: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if names.is_empty() {
            return Err(self.error(
                span,
                "strategy",
                format!("the list is empty: name one or more of {}", StrategyName::list()),
            ));
        }
        let mut out = Vec::new();
        for name in names {
            let parsed = name.as_str().and_then(StrategyName::parse);
            let Some(s) = parsed else {
                return Err(self.error(
                    span,
                    "strategy",
                    format!(
                        "{name} is not a strategy: use one of {}, or a list of them",
                        StrategyName::list()
                    ),
                ));
            };
            if out.contains(&s) {
                return Err(self.error(span, "strategy", format!("\"{}\" is listed twice", s.name())));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// `[lock]`, whose lease fields belong to the `lease` strategy alone.
    fn lock(&self, raw: &RawLock, strategies: &[StrategyName]) -> Result<Lock, ScenarioError> {
        let leasing = strategies.contains(&StrategyName::Lease);
        let not_leasing = |field: &str, span: Range<usize>| {
            self.error(
                Some(span),
                field,
                format!(
                    "only the \"lease\" strategy has a lease, and this scenario runs {}: add \"lease\" to `strategy`, or drop {field}",
                    quoted(strategies.iter().map(|s| s.name()))
                ),
            )
        };
        if let Some(lease) = &raw.lease_ms
            && !leasing
        {
            return Err(not_leasing("lock.lease_ms", lease.span()));
        }
        if let Some(fencing) = &raw.fencing
            && *fencing.get_ref()
            && !leasing
        {
            return Err(not_leasing("lock.fencing", fencing.span()));
        }
        Ok(Lock {
            scope: raw.scope.unwrap_or(LockScope::ReadModifyWrite),
            lease_ms: self.number(
                &raw.lease_ms,
                "lock.lease_ms",
                DEFAULT_LEASE_MS,
                1,
                3_600_000,
                " (a lease of 0 ms is never held)",
            )?,
            fencing: raw.fencing.as_ref().is_some_and(|f| *f.get_ref()),
        })
    }

    /// `[stock] url`: a url of the store's own scheme, for a store that is a server.
    fn url(&self, value: &Option<Spanned<String>>, store: StoreKind) -> Result<Option<String>, ScenarioError> {
        let Some(value) = value else { return Ok(None) };
        let url = value.get_ref();
        if url.is_empty() {
            return Ok(None); // empty: a throwaway server, as docs/reference/scenario.md allows
        }
        let span = Some(value.span());
        let shown = mask_password(url);
        let Some(scheme) = store.url_scheme() else {
            return Err(self.error(
                span,
                "stock.url",
                format!(
                    "store \"{store}\" keeps its stock on this machine and takes no url: a url is for \"postgres\" or \"redis\""
                ),
            ));
        };
        let given = url.split_once("://").map(|(s, _)| s);
        let fits = match store {
            StoreKind::Postgres => matches!(given, Some("postgres" | "postgresql")),
            _ => matches!(given, Some(s) if s == scheme || s == "redis+unix" || s == "unix" || s == "redis+sentinel"),
        };
        if !fits {
            return Err(self.error(
                span,
                "stock.url",
                format!("{shown:?} is not a url of store \"{store}\": it must start with {scheme}://"),
            ));
        }
        Ok(Some(url.clone()))
    }

    fn stock_file(&self, value: &Option<Spanned<String>>) -> Result<String, ScenarioError> {
        let Some(value) = value else {
            return Ok("stock.txt".into());
        };
        let file = value.get_ref();
        if let Err(why) = check_inside(Path::new(file)) {
            return Err(self.error(
                Some(value.span()),
                "stock.file",
                format!("{file:?} {why}: give a relative path inside the trial's folder, such as \"stock.txt\""),
            ));
        }
        Ok(file.clone())
    }

    fn expect(
        &self,
        value: &Option<Spanned<toml::Table>>,
        strategies: &[StrategyName],
        store: StoreKind,
    ) -> Result<Expect, ScenarioError> {
        // With a service, a table of its own is a variant's; else a built-in strategy's.
        let own_table = |key: &str| match store {
            StoreKind::Service => strategies.iter().copied().find(|s| s.name() == key),
            _ => StrategyName::parse(key),
        };
        let Some(value) = value else {
            return Ok(Expect::default());
        };
        let span = Some(value.span());
        let mut expect = Expect::default();
        for (key, v) in value.get_ref() {
            if let Some(strategy) = own_table(key) {
                let toml::Value::Table(table) = v else {
                    return Err(self.error(
                        span,
                        &format!("expect.{key}"),
                        format!("must be a table: [expect.{key}] with keys such as oversell = true"),
                    ));
                };
                let mut own = Expectations::default();
                for (k, v) in table {
                    self.expectation(&mut own, &format!("expect.{key}"), k, v, span.clone())?;
                }
                expect.per_strategy.insert(strategy, own);
            } else {
                self.expectation(&mut expect.all, "expect", key, v, span.clone())?;
            }
        }
        Ok(expect)
    }

    fn expectation(
        &self,
        into: &mut Expectations,
        table: &str,
        key: &str,
        v: &toml::Value,
        span: Option<Range<usize>>,
    ) -> Result<(), ScenarioError> {
        let field = format!("{table}.{key}");
        if key == "final_stock" {
            match v.as_integer() {
                Some(n) if n >= 0 => into.final_stock = Some(n),
                _ => {
                    return Err(self.error(
                        span,
                        &field,
                        format!("{v} is not a stock: give a whole number from 0 up"),
                    ));
                }
            }
            return Ok(());
        }
        let Ok(k) = key.parse::<ExpectKey>() else {
            let keys: Vec<&str> = ExpectKey::ALL.iter().map(|k| k.name()).collect();
            return Err(self.error(
                span,
                &field,
                format!(
                    "unknown expectation: use one of {}, final_stock, or a strategy's own table ({})",
                    keys.join(", "),
                    StrategyName::list()
                ),
            ));
        };
        let Some(b) = v.as_bool() else {
            return Err(self.error(
                span,
                &field,
                format!("{v} is not true or false: false means no trial shows it, true that at least one does"),
            ));
        };
        into.flags.insert(k, b);
        Ok(())
    }
}

/// The hint on a process bound: what it is and how to lift it.
fn lift(max: u64) -> String {
    format!(" (at most {max} processes in a trial; --max-processes N lifts it)")
}

/// `[faults] lag_ms` when the scenario does not say.
pub const DEFAULT_LAG_MS: u64 = 200;

/// Why the fault fields of `f` cannot act on the user's own store, naming those given.
fn url_faults(f: &RawFaults) -> String {
    let given: Vec<&str> = [
        ("failover", f.failover.as_ref().is_some_and(|v| *v.get_ref())),
        ("lag_ms", f.lag_ms.is_some()),
        (
            "partition_ms",
            f.partition_ms.as_ref().is_some_and(|v| *v.get_ref() != 0),
        ),
        ("latency_ms", f.latency_ms.as_ref().is_some_and(|v| *v.get_ref() != 0)),
        ("kill_store", f.kill_store.as_ref().is_some_and(|v| *v.get_ref())),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    format!(
        "with [stock] url sim uses your own store as it is and never kills or cuts what it did not start; \
         drop {} from [faults], or the url for a throwaway primary with replicas",
        given.join(", ")
    )
}

/// Why a soak (`[buyers] duration_ms`) cannot run this scenario, if it cannot.
fn soak_refusal(raw: &RawScenario, strategies: &[StrategyName]) -> Option<&'static str> {
    let faults = &raw.faults;
    if raw.buyers.attempts.is_some() {
        Some("a soak buys for a time, not a number of attempts: give `attempts` or `duration_ms`, not both")
    } else if raw.producers.is_some() || raw.buyers.pool.is_some() {
        Some("a soak runs plain buyers: drop `[producers]` and `pool`, or `duration_ms`")
    } else if strategies.contains(&StrategyName::Queue) {
        Some(SOAK_WITHOUT_QUEUE)
    } else if [&faults.kill_buyers, &faults.stop_buyers]
        .iter()
        .any(|f| f.as_ref().is_some_and(|n| *n.get_ref() > 0))
        || faults.kill_seller == Some(true)
        || faults.failover.as_ref().is_some_and(|f| *f.get_ref())
        || faults.partition_ms.as_ref().is_some_and(|p| *p.get_ref() > 0)
    {
        Some("a soak runs without faults: drop the `[faults]` or `duration_ms`")
    } else {
        None
    }
}
