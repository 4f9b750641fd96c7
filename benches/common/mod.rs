//! What every bench file shares.

use criterion::Criterion;

/// Criterion without its plots, which take longer here than the measurements
/// (`SIM_BENCH_PLOTS=1 cargo bench` draws them, with criterion's HTML report).
pub fn config() -> Criterion {
    let c = Criterion::default();
    if std::env::var_os("SIM_BENCH_PLOTS").is_some() {
        c
    } else {
        c.without_plots()
    }
}

/// A throwaway server of `kind` in `out`, as `sim run` starts one (the Debian packages
/// postgresql and redis-server, which scripts/test installs); `None` when it cannot start,
/// said on standard error with the benchmarks `skipped` names, so that no skip is silent.
#[allow(dead_code)]
pub fn server(
    kind: sim::scenario::StoreKind,
    out: &std::path::Path,
    skipped: &str,
) -> Option<Box<dyn sim::store::Service>> {
    let text = format!("name = \"bench\"\ntrials = 1\n[stock]\nstore = \"{kind}\"\n");
    let scenario = sim::scenario::parse(
        std::path::Path::new("bench.toml"),
        &text,
        sim::scenario::Limits::default(),
    )
    .expect("a valid bench scenario");
    match sim::store::registry(kind).start(&scenario, out) {
        Ok(service) => Some(service),
        Err(e) => {
            eprintln!("skipped {skipped}: no {kind} server could start here ({e:#}); scripts/test installs it");
            None
        }
    }
}
