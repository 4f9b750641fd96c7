//! The stores that are real servers: how soon a throwaway server is ready, and `atomic` on
//! each beside the server's own bare figure on the same server.
//!
//! `cargo bench --bench stores`. Needs the Debian packages postgresql and redis-server
//! (scripts/test installs them).
//!
//! - `ready/postgres`, `ready/redis`: `Store::start`, from nothing to a server that answers
//!   (PostgreSQL's includes `initdb`).
//! - `postgres/atomic/C` against `postgres/pgbench/C`: sim's `atomic` purchase, with C buyer
//!   processes, against `pgbench -M prepared` running the same statement (sim's decrement
//!   with its sale's insert) with C clients, on the same throwaway server. sim's figure is
//!   its trial's gate-to-finish time; pgbench's is its own, without connection time.
//! - `redis/atomic/C` against `redis/evalsha/C`: sim's `atomic` on Redis against C threads
//!   each calling the same script by `EVALSHA` in a bare loop, on the same server.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim::checker::Verdict;
use sim::runner::{self, Interrupts};
use sim::scenario::{self, Limits, Scenario, StoreKind, StrategyName};
use sim::store::{self, Service};

const CLIENTS: [u32; 2] = [1, 4];
/// Purchases per measured trial.
const PURCHASES: u32 = 4_000;

/// An `atomic` trial of `buyers` processes on `store` that never runs out of stock.
fn scenario(store: StoreKind, buyers: u32) -> Scenario {
    let text = format!(
        "name = \"bench-{store}-{buyers}\"\ntrials = 1\nstrategy = \"atomic\"\ndeadline_ms = 300000\n\
         [stock]\nstore = \"{store}\"\ninitial = 1000000000\n[buyers]\ncount = {buyers}\nattempts = {}\nhold_us = 0\n",
        PURCHASES / buyers
    );
    scenario::parse(Path::new("bench.toml"), &text, Limits::default()).expect("a valid bench scenario")
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group
}

fn ready(c: &mut Criterion) {
    let mut group = group(c, "ready");
    for kind in [StoreKind::Postgres, StoreKind::Redis] {
        let probe = tempfile::tempdir().expect("a temporary folder");
        if common::server(kind, probe.path(), &format!("ready/{kind}")).is_none() {
            continue;
        }
        let scenario = scenario(kind, 1);
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let out = tempfile::tempdir().expect("a temporary folder");
                    let started = Instant::now();
                    let service = store::registry(kind).start(&scenario, out.path()).expect("a server");
                    total += started.elapsed();
                    drop(service);
                }
                total
            })
        });
    }
    group.finish();
}

/// sim's `atomic` trials on one server started for them all.
fn atomic_trials(c: &mut Criterion, kind: StoreKind, service: &dyn Service, out: &Path) {
    let exe = Path::new(env!("CARGO_BIN_EXE_sim"));
    let interrupts = Interrupts::install().expect("installing the interrupt handlers");
    let mut group = group(c, &format!("{kind}/atomic"));
    for clients in CLIENTS {
        let scenario = scenario(kind, clients);
        group.throughput(Throughput::Elements(PURCHASES as u64));
        group.bench_with_input(BenchmarkId::from_parameter(clients), &scenario, |b, scenario| {
            b.iter_custom(|iters| {
                let mut wall = Duration::ZERO;
                for _ in 0..iters {
                    let trial = runner::run_one_on(exe, scenario, StrategyName::Atomic, out, &interrupts, service)
                        .expect("a benchmark trial");
                    assert_eq!(trial.check.verdict, Verdict::Safe);
                    assert_eq!(trial.check.sold, PURCHASES as u64);
                    wall += Duration::from_secs_f64(trial.speed.wall_ms / 1e3);
                }
                wall
            })
        });
    }
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let out = tempfile::tempdir().expect("a temporary folder");
    let Some(service) = common::server(StoreKind::Postgres, out.path(), "postgres/*") else {
        return;
    };
    atomic_trials(c, StoreKind::Postgres, &*service, out.path());

    // The connection string is `host=DIR user=sim dbname=postgres`.
    let url = service.url().to_string();
    let setting = |key: &str| {
        url.split(' ')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .expect("a setting of the url")
            .to_string()
    };
    let (host, user, db) = (setting("host"), setting("user"), setting("dbname"));
    let n = service.name();
    let script = out.path().join("atomic.sql");
    std::fs::write(
        &script,
        format!(
            "WITH u AS (UPDATE {n}_stock SET n = n - 1 WHERE id = 1 AND n > 0 RETURNING n + 1 AS ticket), \
             s AS (INSERT INTO {n}_sales (worker, idx, ticket) SELECT 'buyer'::text, 0::int, ticket FROM u) \
             SELECT ticket FROM u;\n"
        ),
    )
    .expect("writing the pgbench script");
    let psql = |sql: &str| {
        let status = Command::new("psql")
            .args(["-h", &host, "-U", &user, "-d", &db, "-qAtc", sql])
            .status()
            .expect("psql");
        assert!(status.success(), "psql {sql}");
    };
    let mut group = group(c, "postgres/pgbench");
    for clients in CLIENTS {
        group.throughput(Throughput::Elements(PURCHASES as u64));
        group.bench_function(BenchmarkId::from_parameter(clients), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    psql(&format!("UPDATE {n}_stock SET n = 1000000000; TRUNCATE {n}_sales"));
                    let output = Command::new("pgbench")
                        .args(["-n", "-M", "prepared", "-h", &host, "-U", &user])
                        .arg("-f")
                        .arg(&script)
                        .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
                        .args(["-t", &(PURCHASES / clients).to_string(), &db])
                        .output()
                        .expect("pgbench");
                    let text = String::from_utf8_lossy(&output.stdout);
                    assert!(
                        output.status.success(),
                        "pgbench: {text}{}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                    let tps: f64 = text
                        .lines()
                        .find_map(|l| l.strip_prefix("tps = "))
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|v| v.parse().ok())
                        .expect("pgbench's tps");
                    total += Duration::from_secs_f64(PURCHASES as f64 / tps);
                }
                total
            })
        });
    }
    group.finish();
}

fn redis(c: &mut Criterion) {
    let out = tempfile::tempdir().expect("a temporary folder");
    let Some(service) = common::server(StoreKind::Redis, out.path(), "redis/*") else {
        return;
    };
    atomic_trials(c, StoreKind::Redis, &*service, out.path());

    let url = service.url().to_string();
    let (stock, sales) = (
        format!("{}:bench-stock", service.name()),
        format!("{}:bench-sales", service.name()),
    );
    let script = redis::Script::new(store::redis::DECREMENT);
    let connect = || {
        redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .expect("a connection")
    };
    let mut group = group(c, "redis/evalsha");
    for clients in CLIENTS {
        group.throughput(Throughput::Elements(PURCHASES as u64));
        group.bench_function(BenchmarkId::from_parameter(clients), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut con = connect();
                    redis::cmd("SET")
                        .arg(&stock)
                        .arg(1_000_000_000)
                        .query::<()>(&mut con)
                        .expect("SET");
                    redis::cmd("DEL").arg(&sales).query::<()>(&mut con).expect("DEL");
                    let mut cons: Vec<_> = (0..clients).map(|_| connect()).collect();
                    let started = Instant::now();
                    std::thread::scope(|s| {
                        for con in &mut cons {
                            let (script, stock, sales) = (&script, &stock, &sales);
                            s.spawn(move || {
                                for _ in 0..PURCHASES / clients {
                                    let found: i64 = script
                                        .key(stock)
                                        .key(sales)
                                        .arg("buyer 0")
                                        .invoke(con)
                                        .expect("EVALSHA");
                                    std::hint::black_box(found);
                                }
                            });
                        }
                    });
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = ready, postgres, redis
}
criterion_main!(benches);
