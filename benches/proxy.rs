//! The fault proxy's cost with no fault: a client making one request at a time (as a buyer
//! does), straight to a Redis server on TCP and through sim's proxy to the same server.
//!
//! `cargo bench --bench proxy`. Needs the Debian package redis-server (scripts/test
//! installs it).
//!
//! - `proxy/direct`: `INCR` round trips straight to the server.
//! - `proxy/through`: the same through a [`sim::store::proxy::Proxy`] in front of it.
//! - `proxy/purchase-direct` and `proxy/purchase-through`: a buyer's purchase as the `atomic`
//!   strategy makes it on Redis (its decrement script, which also records the sale), one
//!   at a time, straight and through the proxy: the proxy's cost to a buyer.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim::store::proxy::Proxy;

/// Round trips per sample.
const REQUESTS: u64 = 2_000;

/// A throwaway `redis-server` on a port of 127.0.0.1, killed when dropped.
struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server() -> Option<Server> {
    let port = TcpListener::bind(("127.0.0.1", 0)).ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(Server(child, addr))
}

/// `n` `INCR` round trips on one connection to `addr`.
fn round_trips(addr: SocketAddr, n: u64) -> Duration {
    let mut con = redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .expect("a connection");
    let started = Instant::now();
    for _ in 0..n {
        let _: i64 = redis::cmd("INCR").arg("n").query(&mut con).expect("an answer");
    }
    started.elapsed()
}

/// `n` purchases by sim's decrement script on one connection to `addr`.
fn purchases(addr: SocketAddr, n: u64) -> Duration {
    let mut con = redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection())
        .expect("a connection");
    let _: () = redis::cmd("SET")
        .arg("stock")
        .arg(1_000_000_000i64)
        .query(&mut con)
        .expect("a stock");
    let script = redis::Script::new(sim::store::redis::DECREMENT);
    let started = Instant::now();
    for _ in 0..n {
        let _: i64 = script
            .key("stock")
            .key("sales")
            .arg("buyer 0")
            .invoke(&mut con)
            .expect("an answer");
    }
    let took = started.elapsed();
    let _: () = redis::cmd("DEL")
        .arg("sales")
        .query(&mut con)
        .expect("the sales dropped");
    took
}

fn proxy(c: &mut Criterion) {
    let Some(server) = server() else {
        eprintln!("skipping proxy: redis-server does not start (install the Debian package redis-server)");
        return;
    };
    let proxy = Proxy::start(server.1).expect("a proxy");
    let mut group = c.benchmark_group("proxy");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(REQUESTS));
    group.bench_function("direct", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| round_trips(server.1, REQUESTS)).sum())
    });
    group.bench_function("through", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| round_trips(proxy.addr(), REQUESTS)).sum())
    });
    group.bench_function("purchase-direct", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| purchases(server.1, REQUESTS)).sum())
    });
    group.bench_function("purchase-through", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| purchases(proxy.addr(), REQUESTS)).sum())
    });
    group.finish();
}

criterion_group!(benches, proxy);
criterion_main!(benches);
