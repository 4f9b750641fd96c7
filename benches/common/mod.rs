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
