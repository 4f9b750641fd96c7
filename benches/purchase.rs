//! In-process costs: one uncontended purchase per strategy, recording one history event, and
//! the checker (and reading a history back) over 1,000,000 operations.
//!
//! `cargo bench --bench purchase`. Nothing here starts a process: the queue's seller runs on
//! a thread of this process, with the seller's own loop (`Board::serve` and `strategy::sell`).

mod common;

use std::hint::black_box;
use std::io;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sim::checker::{self, Facts, Verdict};
use sim::history::export::{self, Format};
use sim::history::stats::median;
use sim::history::{self, History, Kind, Op, Outcome, Record, Recorder, Role, Worker};
use sim::plan::{Hold, TrialPlan};
use sim::scenario::{LockScope, PoolMode, StoreKind, StrategyName, WriteMode};
use sim::store;
use sim::strategy::queue::Reply;
use sim::strategy::queue::board::Board;
use sim::strategy::{self, NoLock};
use sim::sys::clock::{self, now_ns, ticks};
use strum::IntoEnumIterator;

/// Enough stock that no bench runs it out: a sold-out attempt skips the write.
const STOCK: i64 = 999_999_999_999;
/// The size of the history the checker is timed over.
const OPS: usize = 1_000_000;
/// Buyers the 1,000,000 operations are spread over.
const WORKERS: usize = 8;

/// A plan as the runner writes it, for one buyer of `strategy` in `dir`.
fn plan(dir: &Path, strategy: StrategyName) -> TrialPlan {
    TrialPlan {
        strategy,
        scope: LockScope::ReadModifyWrite,
        // The first store that offers what the strategy needs: the file, unless it needs more.
        store: StoreKind::iter()
            .find(|s| s.offers().contains(strategy.needs(false)))
            .expect("a store for every strategy"),
        write: WriteMode::InPlace,
        initial_stock: STOCK,
        stock_path: dir.join("stock.txt"),
        history: dir.join(history::FILE_NAME),
        regions: Vec::new(),
        tsc: clock::tsc_usable(),
        seed: 1,
        runner_pid: std::process::id(),
        buyers: 1,
        attempts: 1,
        hold_us: 0,
        permits: 1,
        lease_ms: 1_000,
        fencing: false,
        deadline_ms: 60_000,
        retries: 100,
        isolation: Default::default(),
        store_url: String::new(),
        store_secret_url: None,
        store_name: String::new(),
        reconnect: false,
        wait_replicas: 0,
        store_pid: 0,
        producers: None,
        tag: format!("{}.bench.{}", std::process::id(), strategy.name()),
        pool: None,
        pool_mode: PoolMode::Async,
        trial_dir: dir.to_path_buf(),
        faults: Vec::new(),
        duration_ms: None,
        service: None,
        service_log: None,
        rate: None,
        arrivals: Default::default(),
    }
}

/// A record kept on the stack, not in a history file.
fn blank_record() -> Record {
    Record::new(Kind::Purchase)
}

/// The queue's seller, as its process runs it, on a thread: it owns the stock. Its record of
/// each sale stays on the stack (recording is timed on its own).
fn start_seller(plan: &TrialPlan) -> JoinHandle<io::Result<()>> {
    let board = Board::open(&plan.trial_dir).expect("opening the seller's board");
    let mut stock = store::FileStock::open(&plan.stock_path, plan.write).expect("opening the stock");
    let mut hold = Hold::new(plan, Role::Seller, 0);
    std::thread::spawn(move || {
        board.serve(|| {
            let mut op = blank_record();
            strategy::sell(&mut stock, &mut op, &mut hold, &mut NoLock, false)?;
            Ok(Reply::of(&op))
        })
    })
}

/// One purchase by a buyer alone: the strategy's whole read-modify-write, the record kept
/// on the stack (recording is timed on its own below).
fn one_purchase(c: &mut Criterion) {
    clock::use_tsc(clock::tsc_usable()); // as the runner tells its workers
    let mut group = c.benchmark_group("purchase/uncontended");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    // The strategies whose store is a server share one throwaway server of each kind.
    let server_dir = tempfile::tempdir().expect("a temporary folder");
    let mut servers: Vec<(StoreKind, Option<Box<dyn store::Service>>)> = Vec::new();
    for &name in StrategyName::ALL {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut plan = plan(dir.path(), name);
        if plan.store.url_scheme().is_some() {
            if !servers.iter().any(|(kind, _)| *kind == plan.store) {
                let skipped = format!("purchase/uncontended on {}", plan.store);
                let folder = server_dir.path().join(plan.store.name());
                servers.push((plan.store, common::server(plan.store, &folder, &skipped)));
            }
            let Some((_, Some(service))) = servers.iter().find(|(kind, _)| *kind == plan.store) else {
                eprintln!(
                    "skipped purchase/uncontended/{name}: its store {} has no server",
                    plan.store
                );
                continue;
            };
            plan.store_url = sim::scenario::mask_password(service.url());
            plan.store_secret_url = Some(service.url().to_string());
            plan.store_name = service.name().to_string();
        }
        let (strategy, store) = (strategy::registry(name), store::registry(plan.store));
        // As the runner sets a trial up; dropped (removed) at the end of the iteration.
        let _stock = store.prepare(&plan).expect("writing the stock");
        let fixture = strategy.prepare(&plan).expect("setting the strategy up");
        let seller = strategy.servers().contains(&Role::Seller).then(|| start_seller(&plan));
        let mut buyer = strategy.buyer(&plan, 0).expect("opening the strategy");
        let mut stock = store.open(&plan, Role::Buyer, 0).expect("opening the stock");
        let mut hold = Hold::new(&plan, Role::Buyer, 0);
        group.bench_function(BenchmarkId::from_parameter(name.name()), |b| {
            b.iter(|| {
                let mut op = blank_record();
                buyer.purchase(&mut *stock, &mut op, &mut hold).expect("a purchase");
                black_box(op.outcome())
            })
        });
        fixture.stop();
        if let Some(seller) = seller {
            seller.join().expect("the seller thread").expect("the seller's loop");
        }
    }
    group.finish();
}

/// Recording one purchase as a buyer does: `begin` (which stamps the start), then the fields
/// and the three other clock readings a sale takes. Creating the file is not timed, and with
/// it the page faults that `Recorder::create` takes before the start gate.
fn record_one_event(c: &mut Criterion) {
    clock::use_tsc(clock::tsc_usable()); // as the runner tells its workers
    const CHUNK: u64 = 1 << 20;
    let mut group = c.benchmark_group("history");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut file = 0u64;
    group.bench_function("record-one-event", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                file += 1;
                let path = dir.path().join(format!("buyer-{file}.bin"));
                let mut recorder = Recorder::create(&path, Role::Buyer, 0, n as usize).expect("a history file");
                let start = Instant::now();
                for i in 0..n as i64 {
                    let op = recorder.begin(Kind::Purchase).expect("room in the history");
                    op.set_value(STOCK - i);
                    op.stamp_read();
                    op.set_written(STOCK - i - 1);
                    op.stamp_write();
                    op.stamp_end();
                    op.set_outcome(Outcome::Sold);
                }
                spent += start.elapsed();
                drop(recorder);
                std::fs::remove_file(&path).expect("removing the history file");
                left -= n;
            }
            spent
        })
    });
    // The stamp of every recorded moment, and the monotonic clock it replaces where the
    // time-stamp counter can be used.
    group.bench_function("ticks", |b| b.iter(ticks));
    group.bench_function("clock-read", |b| b.iter(now_ns));
    group.finish();
}

/// A safe serial sale of `OPS` tickets by `WORKERS` buyers taking turns: every purchase
/// sold, tickets OPS down to 1, one microsecond apart.
fn serial_history() -> History {
    let workers = (0..WORKERS as u32)
        .map(|index| Worker {
            role: Role::Buyer,
            index,
            pid: 1000 + index,
            ready_ns: -1_000_000,
            finish_ns: Some(OPS as u64 * 1_000 + 1_000),
        })
        .collect();
    let mut ops = Vec::with_capacity(OPS);
    for worker in 0..WORKERS {
        for turn in (worker..OPS).step_by(WORKERS) {
            let t = turn as u64 * 1_000;
            let ticket = (OPS - turn) as i64;
            ops.push(
                Op::new(worker as u32, Kind::Purchase, Outcome::Sold, t)
                    .with_read(Some(t + 200))
                    .with_write(Some(t + 600))
                    .with_end(Some(t + 800))
                    .with_value(Some(ticket))
                    .with_written(Some(ticket - 1)),
            );
        }
    }
    History { workers, ops }
}

/// The same history as a trial's file at `path`, written through `Recorder`.
fn write_history_file(path: &Path, history: &History, gate_ns: u64) {
    // The times written are nanoseconds: the file's clock pairs are taken in nanoseconds too.
    clock::use_tsc(false);
    let count = |w: usize| history.ops.iter().filter(|op| op.worker as usize == w).count();
    let workers: Vec<_> = (history.workers.iter().enumerate())
        .map(|(w, worker)| (worker.role, worker.index, count(w)))
        .collect();
    let regions = history::create_file(path, &workers).expect("a history file");
    for (w, worker) in history.workers.iter().enumerate() {
        let region = regions
            .iter()
            .find(|r| (r.role, r.index) == (worker.role, worker.index));
        let mut recorder = Recorder::open(path, region.expect("a region")).expect("a history region");
        recorder.ready();
        for op in history.ops.iter().filter(|op| op.worker as usize == w) {
            let r = recorder.begin(op.kind).expect("room in the history");
            r.set_start_tick(gate_ns + op.start);
            r.set_read_tick(op.read().map_or(0, |t| gate_ns + t));
            r.set_write_tick(op.write().map_or(0, |t| gate_ns + t));
            r.set_end_tick(op.end().map_or(0, |t| gate_ns + t));
            r.set_value(op.value().unwrap_or(history::NO_VALUE));
            r.set_written(op.written().unwrap_or(history::NO_VALUE));
            r.set_outcome(op.outcome);
        }
        recorder.finish();
    }
}

fn checker(c: &mut Criterion) {
    let history = serial_history();
    let facts = Facts::ended(OPS as i64, 0);
    let verdict = checker::check(&history, &facts);
    assert_eq!(
        (verdict.verdict, verdict.sold),
        (Verdict::Safe, OPS as u64),
        "the bench's history should be a safe sale of every ticket"
    );

    println!(
        "checker: a History of {OPS} operations holds {} MiB of Op ({} bytes each)",
        (OPS * std::mem::size_of::<Op>()) >> 20,
        std::mem::size_of::<Op>()
    );
    let mut group = c.benchmark_group("checker");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(OPS as u64));
    group.bench_function("check-1M-ops", |b| {
        b.iter(|| checker::check(black_box(&history), &facts))
    });

    let dir = tempfile::tempdir().expect("a temporary folder");
    let gate_ns = 1_000_000_000;
    let path = dir.path().join(history::FILE_NAME);
    write_history_file(&path, &history, gate_ns);
    history::seal_file(&path).expect("sealing the history file");
    let read = History::read(&path, gate_ns).expect("reading the history back");
    assert_eq!(read.ops.len(), OPS);
    group.bench_function("read-1M-ops", |b| {
        b.iter(|| History::read(&path, gate_ns).expect("reading the history back"))
    });
    group.finish();
}

/// A saved history judged again and written out as operations, and the same operations read
/// back as JSON lines and judged: what `sim check DIR`, `sim export` and `sim check
/// --history` do per trial.
fn operations(c: &mut Criterion) {
    let history = serial_history();
    let facts = Facts::ended(OPS as i64, 0);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let gate_ns = 1_000_000_000;
    let path = dir.path().join(history::FILE_NAME);
    write_history_file(&path, &history, gate_ns);
    history::seal_file(&path).expect("sealing the history file");
    let mut jsonl = Vec::new();
    export::write(&history, Format::Jsonl, &mut jsonl).expect("exporting");
    let imported = sim::history::import::parse(Path::new("bench.jsonl"), &jsonl).expect("reading the export back");
    assert_eq!(
        checker::check(&imported, &facts).verdict,
        Verdict::Safe,
        "the exported history judged as the original"
    );
    println!(
        "operations: {OPS} operations are {} MiB of JSON lines",
        jsonl.len() >> 20
    );

    // On a machine shared with other work criterion's mean follows the load: the fastest of a
    // few runs is the figure that says what the code costs.
    let fastest = |what: &str, run: &dyn Fn()| {
        let seconds: Vec<f64> = (0..9)
            .map(|_| {
                let t = Instant::now();
                run();
                t.elapsed().as_secs_f64()
            })
            .collect();
        let (best, middle) = (seconds.iter().copied().fold(f64::INFINITY, f64::min), median(&seconds));
        println!(
            "operations: {what}: fastest of 9 {:.1} ms ({:.2} M ops/s), median {:.1} ms ({:.2} M ops/s)",
            best * 1e3,
            OPS as f64 / best / 1e6,
            middle * 1e3,
            OPS as f64 / middle / 1e6,
        );
    };
    fastest("read + check a binary history", &|| {
        let h = History::read(&path, gate_ns).expect("reading the history");
        black_box(checker::check(&h, &facts));
    });
    fastest("read + export a binary history", &|| {
        let h = History::read(&path, gate_ns).expect("reading the history");
        export::write(&h, Format::Jsonl, &mut io::sink()).expect("exporting");
    });
    fastest("read + check JSON lines", &|| {
        let h = sim::history::import::parse(Path::new("bench.jsonl"), &jsonl).expect("reading");
        black_box(checker::check(&h, &facts));
    });

    let mut group = c.benchmark_group("operations");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Elements(OPS as u64));
    group.bench_function("check-binary-1M-ops", |b| {
        b.iter(|| {
            let h = History::read(&path, gate_ns).expect("reading the history");
            checker::check(black_box(&h), &facts)
        })
    });
    group.bench_function("export-binary-1M-ops", |b| {
        b.iter(|| {
            let h = History::read(&path, gate_ns).expect("reading the history");
            export::write(&h, Format::Jsonl, &mut io::sink()).expect("exporting")
        })
    });
    group.bench_function("check-jsonl-1M-ops", |b| {
        b.iter(|| {
            let h = sim::history::import::parse(Path::new("bench.jsonl"), black_box(&jsonl)).expect("reading");
            checker::check(&h, &facts)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = one_purchase, record_one_event, checker, operations
}
criterion_main!(benches);
