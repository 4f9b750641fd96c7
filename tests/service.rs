//! The user's own service (`store = "service"`): the example shop (examples/shop, Python's
//! standard library) raced for real, over HTTP and as a command, with race windows wide
//! enough (20 ms between the shop's read and its write, eight buyers) that every outcome is
//! certain; a service that misbehaves, and a runner that is interrupted or killed, leave no
//! process of the service behind.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{processes_mentioning, run_scenario, run_shipped, u, wait_until};

fn shop() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/shop/shop.py")
        .display()
        .to_string()
}

/// A scenario of one HTTP variant `v` of the example shop, started with `args`, with the
/// variant's `extra` fields and the scenario's `more` tables.
fn one_shop(args: &str, extra: &str, more: &str) -> String {
    format!(
        r#"
trials = 1
strategy = "v"
deadline_ms = 30000
[stock]
store = "service"
initial = 20
[buyers]
count = 8
attempts = 5
[service.v]
start = "python3 {shop} --port {{port}} --db {{dir}}/v.db {args}"
url = "http://127.0.0.1:{{port}}"
{extra}
{more}
"#,
        shop = shop()
    )
}

/// Fails if any process still names the run's output folder (the shop's `--db`).
fn none_left(out: &Path) {
    let needle = out.display().to_string();
    assert!(
        wait_until(Duration::from_secs(10), || processes_mentioning(&needle).is_empty()),
        "left behind: {:?}",
        processes_mentioning(&needle)
    );
}

#[test]
fn the_racy_shop_oversells_in_every_trial_and_the_others_are_exact() {
    let run = run_shipped("shop.toml", &["--trials", "2"]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    for t in run.trials("racy") {
        assert!(u(&t["oversold"]) > 0 && u(&t["duplicate_tickets"]) > 0, "{t}");
    }
    for name in ["locked", "atomic"] {
        for t in run.trials(name) {
            assert_eq!(t["verdict"], "safe", "{name}: {t}");
            assert_eq!((u(&t["sold"]), t["final_stock"].as_i64()), (20, Some(0)), "{name}: {t}");
            assert_eq!(u(&t["sold"]) + u(&t["sold_out"]), 40, "{name}: {t}");
        }
    }
    none_left(&run.out);
}

#[test]
fn the_command_shop_races_as_the_http_one() {
    let run = run_shipped("shop-command.toml", &["--trials", "1"]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    assert!(u(&run.trials("racy")[0]["oversold"]) > 0);
    for name in ["locked", "atomic"] {
        let t = &run.trials(name)[0];
        assert_eq!(
            (t["verdict"].as_str(), u(&t["sold"])),
            (Some("safe"), 20),
            "{name}: {t}"
        );
    }
    none_left(&run.out);
}

#[test]
fn a_retried_key_is_replayed_safely_or_found_sold_twice() {
    let run = run_shipped("shop-retries.toml", &["--trials", "1"]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    let safe = &run.trials("safe")[0];
    assert!(u(&safe["retries"]) > 0, "{safe}");
    assert_eq!(
        (u(&safe["duplicate_sale"]), safe["verdict"].as_str()),
        (0, Some("safe")),
        "{safe}"
    );
    let unsafe_ = &run.trials("unsafe")[0];
    assert!(u(&unsafe_["duplicate_sale"]) > 0, "{unsafe_}");
    let said = unsafe_["anomalies"].to_string();
    assert!(said.contains("sold twice to one retried purchase"), "{said}");
    none_left(&run.out);
}

#[test]
fn lost_answers_are_indeterminate_and_counted_both_ways() {
    // Every second sale is committed and then answered 503; nothing is retried.
    let run = run_scenario(&one_shop("--mode atomic --fail-every 2", "", ""), &[]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    let t = &run.trials("v")[0];
    assert!(u(&t["indeterminate"]) >= 5, "{t}");
    // The lost answers sold: the stock fell by more than the sales told, and that is no
    // lost update, no oversell.
    assert_eq!(t["verdict"], "safe", "{t}");
    assert_eq!(t["final_stock"].as_i64(), Some(0), "{t}");
    assert_eq!(u(&t["attempts"]), 40, "{t}");
}

/// Runs a scenario that must be refused with exit 2, and returns its stderr.
fn refused(scenario: &str) -> String {
    let run = run_scenario(scenario, &[]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    none_left(&run.out);
    run.stderr()
}

#[test]
fn a_service_that_never_gets_ready_is_named_with_ready_and_ready_ms() {
    let e = refused(&one_shop(
        "--mode atomic",
        "ready = \"GET /nowhere\"\nready_ms = 5000",
        "",
    ));
    assert!(e.contains("service.v.ready") && e.contains("ready_ms = 5000"), "{e}");
    assert!(e.contains("404"), "the last answer: {e}");
    assert!(e.contains("shop: atomic on 127.0.0.1"), "service.log's end: {e}");
}

#[test]
fn a_service_that_exits_early_is_named_with_its_status() {
    let scenario = one_shop("--mode nonsense", "", "");
    let e = refused(&scenario);
    assert!(e.contains("service.v.start") && e.contains("exit status: 2"), "{e}");
    assert!(e.contains("invalid choice: 'nonsense'"), "service.log's end: {e}");
}

#[test]
fn a_url_that_does_not_answer_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = refused(&format!(
        r#"
trials = 1
[stock]
store = "service"
[buyers]
count = 1
[service.v]
url = "http://127.0.0.1:{port}"
ready_ms = 300
"#
    ));
    assert!(e.contains("did not answer 2xx within ready_ms = 300"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn a_reply_that_is_not_json_is_shown() {
    let e = refused(&one_shop("--mode atomic --reply text", "", ""));
    // Whichever buyer's reply came first (the buyers race), its text is quoted.
    assert!(e.contains("is not JSON") && e.contains("sold ticket "), "{e}");
    assert!(e.contains("purchase 0"), "the attempt: {e}");
}

#[test]
fn a_missing_ticket_pointer_is_shown_with_the_reply() {
    let e = refused(&one_shop("--mode atomic", "ticket = \"/order/seat\"", ""));
    // Whichever buyer's reply came first (the buyers race), it is quoted whole.
    assert!(
        e.contains("\"/order/seat\"") && e.contains(r#"the reply: {"ticket": "#),
        "{e}"
    );
}

#[test]
fn a_stock_that_cannot_be_read_names_the_pointer() {
    let e = refused(&one_shop("--mode atomic", "stock_pointer = \"/left\"", ""));
    assert!(
        e.contains("stock_pointer \"/left\"") && e.contains(r#"{"stock":20}"#),
        "{e}"
    );
}

#[test]
fn header_values_are_never_saved_nor_printed() {
    let run = common::sim_with_env(
        &one_shop(
            "--mode atomic --token $SIM_TEST_SHOP_TOKEN",
            "headers = { Authorization = \"Bearer ${SIM_TEST_SHOP_TOKEN}\" }",
            "",
        ),
        &[("SIM_TEST_SHOP_TOKEN", "sesame-7")],
    );
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    assert_eq!(u(&run.trials("v")[0]["sold"]), 20, "the shop took the token");
    for file in ["results.json", "trials/v/000/plan.json", "service.log", "index.html"] {
        let text = std::fs::read_to_string(run.out.join(file)).unwrap();
        assert!(!text.contains("sesame"), "{file} holds the token");
    }
    assert!(!run.stdout().contains("sesame") && !run.stderr().contains("sesame"));
}

#[test]
fn a_variable_a_header_needs_is_named_without_a_value() {
    let e = refused(&one_shop(
        "--mode atomic",
        "headers = { Authorization = \"Bearer ${SIM_TEST_UNSET_TOKEN}\" }",
        "",
    ));
    assert!(
        e.contains("service.v.headers.Authorization") && e.contains("SIM_TEST_UNSET_TOKEN"),
        "{e}"
    );
}

/// Starts a long run of the racy shop in the background; returns it once the shop serves.
fn long_run(dir: &Path) -> std::process::Child {
    let scenario = dir.join("long.toml");
    let text = one_shop("--mode racy --hold-ms 50", "", "").replace("trials = 1", "trials = 100");
    std::fs::write(&scenario, text).unwrap();
    let sim = common::run_in_background(&scenario, dir);
    let log = dir.join("out/service.log");
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("shop: racy"))),
        "the shop never started"
    );
    sim
}

#[test]
fn ctrl_c_leaves_no_service_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = long_run(dir.path());
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    let status = sim.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    none_left(&dir.path().join("out"));
}

#[test]
fn ctrl_c_while_waiting_for_a_service_to_be_ready_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("never-ready.toml");
    let text = r#"
strategy = "v"
[stock]
store = "service"
initial = 20
[service.v]
start = "python3 -c 'import time; time.sleep(600)' {dir}"
url = "http://127.0.0.1:{port}"
ready_ms = 60000
"#;
    std::fs::write(&scenario, text).unwrap();
    let mut sim = common::run_in_background(&scenario, dir.path());
    let out = dir.path().join("out");
    let needle = out.display().to_string();
    assert!(
        wait_until(Duration::from_secs(30), || processes_mentioning(&needle)
            .iter()
            .any(|p| p.contains("sleep(600)"))),
        "the service never started"
    );
    let asked = std::time::Instant::now();
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    let status = sim.wait().unwrap();
    // Well before ready_ms's 60 s.
    assert!(asked.elapsed() < Duration::from_secs(20), "{:?}", asked.elapsed());
    assert_eq!(status.code(), Some(130));
    none_left(&out);
}

#[test]
fn a_killed_runner_leaves_no_service_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = long_run(dir.path());
    sim.kill().unwrap(); // SIGKILL: no clean-up of the runner's runs
    sim.wait().unwrap();
    none_left(&dir.path().join("out"));
}

#[test]
fn a_service_scenario_is_refused_without_its_tables_and_other_stores_refuse_them() {
    let e = refused("[stock]\nstore = \"service\"\n");
    assert!(e.contains("[service.NAME]"), "{e}");
    let e = refused("[service.v]\nurl = \"http://127.0.0.1:1\"\n");
    assert!(e.contains("service.v") && e.contains("store = \"service\""), "{e}");
    let e = refused("strategy = \"w\"\n[stock]\nstore = \"service\"\n[service.v]\nurl = \"http://127.0.0.1:1\"\n");
    assert!(
        e.contains("\"w\" is not a [service.NAME] table") && e.contains("\"v\""),
        "{e}"
    );
    let e = refused("[stock]\nstore = \"service\"\n[service.v]\nurl = \"http://x\"\ncommand = \"cat\"\n");
    assert!(e.contains("not both"), "{e}");
    let e = refused("[stock]\nstore = \"service\"\n[service.v]\nurl = \"http://x\"\nsold_out = [503]\n");
    assert!(e.contains("field `service.v.sold_out`"), "{e}");
}

#[test]
fn tickets_that_are_ids_are_checked_for_duplicates_and_the_rest_is_not_checkable() {
    let racy = run_scenario(&one_shop("--mode racy --hold-ms 20 --ids", "", ""), &[]);
    assert_eq!(racy.code(), 0, "{}{}", racy.stdout(), racy.stderr());
    let t = &racy.trials("v")[0];
    assert!(u(&t["duplicate_tickets"]) > 0 && u(&t["oversold"]) > 0, "{t}");
    let exact = run_scenario(&one_shop("--mode atomic --ids", "", ""), &[]);
    let t = &exact.trials("v")[0];
    assert_eq!((t["verdict"].as_str(), u(&t["sold"])), (Some("safe"), 20), "{t}");
    let said = t["not_checkable"].to_string();
    for check in ["order_violations", "torn_reads", "phantom_stock"] {
        assert!(
            said.contains(&format!("{check}: not checkable: tickets are ids")),
            "{said}"
        );
    }
    assert!(
        exact
            .stdout()
            .contains("v: order_violations: not checkable: tickets are ids")
    );
}

#[test]
fn an_open_loop_sends_on_schedule_and_is_refused_without_a_service() {
    // 8 buyers × 10 purchases at 40/s, evenly: the last is planned 1.975 s after the gate.
    let run = run_scenario(
        &one_shop("--mode atomic", "", "").replace("attempts = 5", "attempts = 10\nrate = 40"),
        &[],
    );
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    let t = &run.trials("v")[0];
    assert_eq!(u(&t["attempts"]), 80, "{t}");
    assert!(t["wall_ms"].as_f64().unwrap() >= 1950.0, "sent before their time: {t}");
    // Latency counts from the planned time, service time from the send: never longer.
    let (latency, service) = (&t["latency"]["max_us"], &t["service_time"]["max_us"]);
    assert!(service.as_f64().unwrap() <= latency.as_f64().unwrap(), "{t}");
    let e = refused("[buyers]\nrate = 100\n");
    assert!(
        e.contains("field `buyers.rate`") && e.contains("store = \"service\""),
        "{e}"
    );
    let e = refused("[buyers]\narrivals = \"poisson\"\n");
    assert!(e.contains("field `buyers.arrivals`"), "{e}");
}

/// A certificate authority and a certificate it signed for 127.0.0.1, made by openssl in
/// `dir`: (the authority's certificate, the service's certificate, its key).
fn certificates(dir: &Path) -> (String, String, String) {
    let path = |f: &str| dir.join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let (ca, ca_key, csr, cert, key) = (
        path("ca.pem"),
        path("ca-key.pem"),
        path("leaf.csr"),
        path("cert.pem"),
        path("key.pem"),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=sim test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &cert,
        "-days",
        "2",
        "-extfile",
        &path("ext.cnf"),
    ]);
    (ca, cert, key)
}

#[test]
fn an_https_service_is_bought_from_when_its_authority_is_given_and_refused_at_once_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let https = |ca_file: &str| {
        one_shop(&format!("--mode atomic --tls {cert} {key}"), ca_file, "")
            .replace("url = \"http://", "url = \"https://")
    };
    let run = run_scenario(&https(&format!("ca_file = \"{ca}\"")), &[]);
    assert_eq!(run.code(), 0, "{}{}", run.stdout(), run.stderr());
    let t = &run.trials("v")[0];
    assert_eq!(
        (t["verdict"].as_str(), u(&t["sold"]), u(&t["final_stock"])),
        (Some("safe"), 20, 0),
        "{t}"
    );

    // Without the authority, the public roots do not know the service's certificate: said
    // at once, naming the field to give, not after ready_ms.
    let started = std::time::Instant::now();
    let run = run_scenario(&https("ready_ms = 60000"), &[]);
    assert_eq!(run.code(), 2, "{}", run.stdout());
    let e = run.stderr();
    assert!(e.contains("service.v.ca_file") && e.contains("certificate"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // A ca_file for a plain http:// url, or one that holds no certificate, is refused.
    let e = refused(&one_shop("", &format!("ca_file = \"{ca}\""), ""));
    assert!(e.contains("service.v.ca_file") && e.contains("https://"), "{e}");
    let e = refused(&https(&format!("ca_file = \"{key}\"")));
    assert!(
        e.contains("service.v.ca_file") && e.contains("no PEM certificate"),
        "{e}"
    );
}

#[test]
fn two_runs_of_a_shop_are_compared_variant_by_variant() {
    // The same variant `v`, locked in one run and racy in the other: every racy trial
    // oversells (eight buyers read before any writes, 20 ms apart). Five trials a side, so
    // that Fisher's test can tell 0 of 5 from 5 of 5.
    let run = |mode: &str| run_scenario(&one_shop(mode, "", "").replace("trials = 1", "trials = 5"), &[]);
    let (safe, racing) = (run("--mode locked"), run("--mode racy --hold-ms 20"));
    for r in [&safe, &racing] {
        assert_eq!(r.code(), 0, "{}{}", r.stdout(), r.stderr());
    }
    let compare = |a: &Path, b: &Path| {
        common::sim()
            .arg("compare")
            .arg(a)
            .arg(b)
            .args(["--force", "--fail-if-anomalous"])
            .output()
            .unwrap()
    };
    let worse = compare(&safe.out, &racing.out);
    let said = String::from_utf8_lossy(&worse.stdout);
    assert_eq!(
        worse.status.code(),
        Some(1),
        "{said}{}",
        String::from_utf8_lossy(&worse.stderr)
    );
    assert!(
        said.contains("regression: v: anomalous trials rose from 0 of 5"),
        "{said}"
    );
    let better = compare(&racing.out, &safe.out);
    assert_eq!(
        better.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&better.stdout)
    );
}

#[test]
fn a_soak_of_a_service_is_judged_as_its_trials_are() {
    // Two soaks of 1.5 s in an open loop, tickets as ids, every fourth sale answered 503
    // after its commit and retried: the safe shop replays its answer, the unsafe one sells
    // again.
    let variant = |name: &str, mode: &str| {
        format!(
            "[service.{name}]\nstart = \"python3 {shop} --port {{port}} --db {{dir}}/{name}.db --mode {mode} --ids --fail-every 4\"\n\
             url = \"http://127.0.0.1:{{port}}\"\nretries = 3\n",
            shop = shop()
        )
    };
    let scenario = format!(
        "trials = 1\nstrategy = [\"safe\", \"unsafe\"]\n[stock]\nstore = \"service\"\ninitial = 100000\n\
         [buyers]\ncount = 4\nduration_ms = 1500\nrate = 400\n{}{}",
        variant("safe", "atomic"),
        variant("unsafe", "retry-unsafe")
    );
    let run = run_scenario(&scenario, &[]);
    assert!(matches!(run.code(), 0 | 1), "{}{}", run.stdout(), run.stderr());
    for name in ["safe", "unsafe"] {
        let t = &run.trials(name)[0];
        assert!(u(&t["sold"]) > 100 && u(&t["retries"]) > 0, "{name}: {t}");
        // Ids are no stock values: no torn read, no phantom stock, and those checks said so.
        assert_eq!((u(&t["torn_reads"]), u(&t["phantom_stock"])), (0, 0), "{name}: {t}");
        assert!(
            t["not_checkable"].to_string().contains("tickets are ids"),
            "{name}: {t}"
        );
        assert!(
            t["service_time"]["p50_us"].as_f64().is_some_and(|us| us > 0.0),
            "{name}: {t}"
        );
    }
    let safe = &run.trials("safe")[0];
    assert_eq!(
        (safe["verdict"].as_str(), u(&safe["duplicate_sale"])),
        (Some("safe"), 0),
        "{safe}"
    );
    let unsafe_ = &run.trials("unsafe")[0];
    assert!(u(&unsafe_["duplicate_sale"]) > 0, "{unsafe_}");
    assert_eq!(unsafe_["verdict"], "inconsistent", "{unsafe_}");
}
