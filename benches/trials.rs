//! Whole contended trials: 1, 2, 4 and 8 buyer processes per strategy, each trial run by
//! `runner::run_one` with the real `sim` binary and checked.
//!
//! `cargo bench --bench trials`. Only the gate-to-finish part of each trial is timed (its
//! `wall_ms`): spawning, reaping and checking are not. Throughput is purchases per second.
//! `spawn/100-buyers` times the other part: spawning 100 buyers until all are at the gate.

mod common;

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim::checker::Verdict;
use sim::runner::{self, Interrupts};
use sim::scenario::{self, Limits, Scenario, StoreKind, StrategyName};
use strum::IntoEnumIterator;

const BUYERS: [u32; 4] = [1, 2, 4, 8];

/// Purchases in one trial, so that a trial takes 20 ms or more of gate-to-finish: every
/// strategy sells 200,000–1,000,000 a second here.
fn purchases(_strategy: StrategyName) -> u32 {
    24_000
}

/// A trial of `buyers` processes that share the purchases and never run out of stock, with
/// no race window: what is timed is the strategy and sim around it.
fn scenario(strategy: StrategyName, buyers: u32) -> Scenario {
    let total = purchases(strategy);
    let text = format!(
        r#"
name = "bench-{strategy}-{buyers}"
trials = 1
strategy = "{strategy}"
deadline_ms = 120000

[stock]
initial = {total}
write = "in-place"
store = "{store}"

[buyers]
count = {buyers}
attempts = {attempts}
hold_us = 0
"#,
        attempts = total / buyers,
        store = store_for(strategy),
    );
    scenario::parse(Path::new("bench.toml"), &text, Limits::default()).expect("a valid bench scenario")
}

/// The first store that offers what `strategy` needs: the file, unless it needs more.
fn store_for(strategy: StrategyName) -> StoreKind {
    StoreKind::iter()
        .find(|s| s.offers().contains(strategy.needs(false)))
        .expect("a store for every strategy")
}

fn contended_trials(c: &mut Criterion) {
    let exe = Path::new(env!("CARGO_BIN_EXE_sim"));
    let interrupts = Interrupts::install().expect("installing the interrupt handlers");
    let out = tempfile::tempdir().expect("a temporary folder");
    // The stores that are servers have their own bench, `stores`, which starts one server
    // for all its trials.
    let local = StrategyName::ALL
        .iter()
        .filter(|&&s| store_for(s).url_scheme().is_none());
    for &strategy in local {
        let mut group = c.benchmark_group(format!("trial/{strategy}"));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        for buyers in BUYERS {
            let scenario = scenario(strategy, buyers);
            group.throughput(Throughput::Elements(
                (scenario.buyers.count * scenario.buyers.attempts) as u64,
            ));
            group.bench_with_input(BenchmarkId::from_parameter(buyers), &scenario, |b, scenario| {
                b.iter_custom(|iters| {
                    let mut wall = Duration::ZERO;
                    for _ in 0..iters {
                        let trial = runner::run_one(exe, scenario, strategy, out.path(), &interrupts)
                            .expect("a benchmark trial");
                        if strategy != StrategyName::None {
                            assert_eq!(trial.check.verdict, Verdict::Safe, "{strategy} with {buyers} buyers");
                        }
                        assert_eq!(
                            trial.check.attempts,
                            (scenario.buyers.count * scenario.buyers.attempts) as u64
                        );
                        wall += Duration::from_secs_f64(trial.speed.wall_ms / 1e3);
                    }
                    wall
                })
            });
        }
        group.finish();
    }
}

/// From the first worker spawned to all 100 buyers waiting at the start gate (`spawn_ms`),
/// a trial's set-up that `wall_ms` leaves out.
fn spawn_100_buyers(c: &mut Criterion) {
    let exe = Path::new(env!("CARGO_BIN_EXE_sim"));
    let interrupts = Interrupts::install().expect("installing the interrupt handlers");
    let out = tempfile::tempdir().expect("a temporary folder");
    let mut scenario = scenario(StrategyName::None, 100);
    scenario.buyers.attempts = 1;
    let mut group = c.benchmark_group("spawn");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("100-buyers", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let trial = runner::run_one(exe, &scenario, StrategyName::None, out.path(), &interrupts)
                        .expect("a benchmark trial");
                    Duration::from_secs_f64(trial.spawn_ms / 1e3)
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = contended_trials, spawn_100_buyers
}
criterion_main!(benches);
