//! `service`: the user's own program keeps the stock, and sim only buys from it, over HTTP
//! or through the user's command (DESIGN.md, "The user's own service"). Each `[service.NAME]`
//! table is a variant, run as a strategy is: before its first trial sim starts it (its
//! `start` command, in a process group of its own, watched by a guard that stops it if the
//! runner dies), polls `ready`, and before every trial sends `reset`; after each trial it
//! reads `stock`. The buyers' side, one client per buyer process, is [`Client`].

mod command;
pub mod guard;
mod http;
mod process;
mod wire;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::{Answer, BuyRequest, Reading, Stock, Store, Ticket};
use crate::checker::FinalStock;
use crate::history::Role;
use crate::plan::{Fixture, TrialPlan};
use crate::scenario::{Scenario, ServiceVariant, StrategyName, mask_password};
use command::{Instance, Said};
use http::{Http, Reply, excerpt};
use process::Started;

/// The file of the run's folder that the service's output goes to.
pub const LOG: &str = "service.log";

/// The environment variable that hands buyer processes the variant's headers, `${VAR}`s
/// filled in: plan.json never holds them.
pub const HEADERS_VARIABLE: &str = "SIM_SERVICE_HEADERS";

/// The `service` store.
pub struct ServiceStore;

impl Store for ServiceStore {
    fn start(&self, scenario: &Scenario, out: &Path) -> Result<Box<dyn super::Service>> {
        let dir = out
            .canonicalize()
            .with_context(|| format!("finding {}", out.display()))?;
        Ok(Box::new(Shops {
            variants: scenario.service.clone(),
            dir,
            current: RefCell::new(None),
        }))
    }

    fn prepare(&self, _plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Ok(Box::new(())) // the service's own stock is reset by `Shops::begin_trial`
    }

    fn open(&self, plan: &TrialPlan, _role: Role, index: u32) -> io::Result<Box<dyn Stock>> {
        let variant = plan
            .service
            .as_ref()
            .ok_or_else(|| io::Error::other("the plan names no variant of the service"))?;
        let headers = match std::env::var(HEADERS_VARIABLE) {
            Ok(json) => serde_json::from_str(&json).map_err(io::Error::other)?,
            Err(_) => Vec::new(),
        };
        let way = Way::open(variant, &super::url(plan), headers, plan.service_log.as_deref())?;
        Ok(Box::new(Client {
            variant: variant.clone(),
            way,
            buyer: index,
        }))
    }
}

/// How a process reaches the variant.
enum Way {
    Http(Http),
    Command(Instance),
}

impl Way {
    fn open(
        variant: &ServiceVariant,
        url: &str,
        headers: Vec<(String, String)>,
        log: Option<&Path>,
    ) -> io::Result<Way> {
        let timeout = Duration::from_millis(variant.timeout_ms);
        Ok(match &variant.command {
            Some(command) => {
                let mut instance = Instance::start(command, log.unwrap_or(Path::new("/dev/null")), timeout)?;
                instance.await_ready(Duration::from_millis(variant.ready_ms))?;
                Way::Command(instance)
            }
            None => Way::Http(Http::new(url, headers, timeout, variant.ca_file.as_deref())?),
        })
    }
}

/// A buyer process's side: one connection, or one instance of the command.
pub struct Client {
    variant: ServiceVariant,
    way: Way,
    buyer: u32,
}

impl Stock for Client {
    fn read(&mut self) -> io::Result<Reading> {
        Err(io::Error::other(
            "a service's stock is read with `stock`, after the trial",
        ))
    }

    fn write(&mut self, _value: i64) -> io::Result<()> {
        Err(io::Error::other("sim never writes a service's stock: it buys"))
    }

    fn buy(&mut self, request: &BuyRequest) -> io::Result<Answer> {
        let v = &self.variant;
        match &mut self.way {
            Way::Http(client) => {
                let body = fill_buy(&v.buy_body, self.buyer, request);
                let key = [(v.idempotency_header.as_str(), request.key.as_str())];
                let extra: &[(&str, &str)] = if v.idempotency_header.is_empty() { &[] } else { &key };
                let reply = client.send(&v.buy, Some(&body), extra);
                judge_http(v, reply, request)
            }
            Way::Command(instance) => {
                let mut line = Map::new();
                line.insert("op".into(), "buy".into());
                line.insert("buyer".into(), self.buyer.into());
                line.insert("attempt".into(), request.attempt.into());
                line.insert("key".into(), request.key.clone().into());
                judge_command(instance.call(line)?, request)
            }
        }
    }
}

/// `{buyer}`, `{attempt}` and `{key}` of a purchase filled into `template`.
fn fill_buy(template: &str, buyer: u32, request: &BuyRequest) -> String {
    template
        .replace("{buyer}", &buyer.to_string())
        .replace("{attempt}", &request.attempt.to_string())
        .replace("{key}", &request.key)
}

/// A reply to `buy`, judged as Jepsen judges a client's: 2xx with a ticket is sold, a
/// `sold_out` status sold out, another 4xx failed, and anything else indeterminate. A 2xx
/// sim cannot read is an error: the scenario's `ticket` does not fit the service.
fn judge_http(v: &ServiceVariant, reply: Reply, request: &BuyRequest) -> io::Result<Answer> {
    let (status, body) = match reply {
        Reply::Answered { status, body } => (status, body),
        Reply::Lost(why) => return Ok(Answer::Unknown(why)),
        Reply::Refused(why) => return Ok(Answer::Failed(why)),
    };
    Ok(match status {
        200..=299 => Answer::Sold(read_ticket(&body, &v.ticket, &format!("`buy` ({})", v.buy), request)?),
        s if v.sold_out.contains(&s) => Answer::SoldOut,
        400..=499 => Answer::Failed(format!("status {status}")),
        _ => Answer::Unknown(format!("status {status}")),
    })
}

/// The ticket at `pointer` in a reply: a whole number, or a string (an id).
fn read_ticket(body: &[u8], pointer: &str, what: &str, request: &BuyRequest) -> io::Result<Ticket> {
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        io::Error::other(format!(
            "purchase {} (key {}): the reply to {what} is not JSON ({e}); its first 200 bytes: {}",
            request.attempt,
            request.key,
            excerpt(body)
        ))
    })?;
    match json.pointer(pointer) {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(Ticket::Number(n.as_i64().unwrap_or_default())),
        Some(Value::String(id)) => Ok(Ticket::Id(id.clone())),
        found => Err(io::Error::other(format!(
            "purchase {} (key {}): the reply to {what} has {} at the `ticket` pointer {pointer:?}, where a whole \
             number or a string was expected; the reply: {}",
            request.attempt,
            request.key,
            found.map_or("nothing".to_string(), |f| f.to_string()),
            excerpt(body)
        ))),
    }
}

/// A command's answer to `buy`.
fn judge_command(said: Said, request: &BuyRequest) -> io::Result<Answer> {
    let reply = match said {
        Said::Silent => return Ok(Answer::Unknown("no answer within timeout_ms".into())),
        Said::Reply(reply) => reply,
    };
    if let Some(ticket) = reply.get("ticket") {
        return match ticket {
            Value::Number(n) if n.as_i64().is_some() => {
                Ok(Answer::Sold(Ticket::Number(n.as_i64().unwrap_or_default())))
            }
            Value::String(id) => Ok(Answer::Sold(Ticket::Id(id.clone()))),
            other => Err(io::Error::other(format!(
                "purchase {} (key {}): the command answered the ticket {other}, where a whole number or a string was expected",
                request.attempt, request.key
            ))),
        };
    }
    if reply.get("sold_out").and_then(Value::as_bool) == Some(true) {
        return Ok(Answer::SoldOut);
    }
    if let Some(why) = reply.get("error") {
        return Ok(Answer::Failed(why.to_string()));
    }
    if let Some(why) = reply.get("unknown") {
        return Ok(Answer::Unknown(why.to_string()));
    }
    Err(io::Error::other(format!(
        "purchase {} (key {}): the command answered {}, which has none of \"ticket\", \"sold_out\", \"error\" or \"unknown\"",
        request.attempt,
        request.key,
        Value::Object(reply)
    )))
}

/// What the store keeps up for a run: the variant now racing, started before its first
/// trial and stopped before the next variant's, or when the run ends, however it ends.
struct Shops {
    variants: BTreeMap<String, ServiceVariant>,
    /// The run's folder: `{dir}`, and where service.log is.
    dir: PathBuf,
    current: RefCell<Option<Running>>,
}

/// A variant started for its trials.
struct Running {
    name: String,
    /// The variant with `{port}` and `{dir}` filled in.
    variant: ServiceVariant,
    /// Its headers, `${VAR}`s filled in.
    headers: Vec<(String, String)>,
    /// Its `start` command's process group, if it has one; stopped when dropped.
    started: Option<Started>,
    /// The runner's own way to it, for `reset` and `stock`.
    way: RefCell<Way>,
}

impl Shops {
    fn log(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    /// The last lines of service.log, for messages.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        match lines.is_empty() {
            true => format!("{} is empty", self.log().display()),
            false => format!(
                "the end of {}:\n{}",
                self.log().display(),
                lines.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        }
    }

    /// Starts variant `name`, stopping the one before.
    fn enter(&self, name: &str) -> Result<()> {
        if self.current.borrow().as_ref().is_some_and(|r| r.name == name) {
            return Ok(());
        }
        drop(self.current.borrow_mut().take()); // the one before stops first
        let Some(variant) = self.variants.get(name) else {
            bail!("the scenario has no [service.{name}] table");
        };
        let port = process::free_port().context("finding a free port for {port}")?;
        let dir = self.dir.to_string_lossy().into_owned();
        let fill = |s: &str| s.replace("{port}", &port.to_string()).replace("{dir}", &dir);
        let mut filled = variant.clone();
        filled.start = variant.start.as_deref().map(fill);
        filled.url = variant.url.as_deref().map(fill);
        filled.command = variant.command.as_deref().map(fill);
        let mut headers = Vec::new();
        for (key, template) in &variant.headers {
            let value = crate::scenario::expand_env(template)
                .map_err(|why| anyhow::anyhow!("service.{name}.headers.{key}: {why}"))?;
            headers.push((key.clone(), value));
        }
        let started = match &filled.start {
            Some(start) => Some(Started::spawn(name, start, &self.log())?),
            None => None,
        };
        let url = filled.url.clone().unwrap_or_default();
        let timeout = Duration::from_millis(filled.timeout_ms);
        let way = match &filled.command {
            Some(command) => Way::Command(
                Instance::start(command, &self.log(), timeout)
                    .with_context(|| format!("service.{name}.command: starting {command:?}"))?,
            ),
            None => Way::Http(
                Http::new(&url, headers.clone(), timeout, filled.ca_file.as_deref())
                    .with_context(|| format!("service.{name}.ca_file"))?,
            ),
        };
        let mut running = Running {
            name: name.to_string(),
            variant: filled,
            headers,
            started,
            way: RefCell::new(way),
        };
        self.await_ready(&mut running)?;
        *self.current.borrow_mut() = Some(running);
        Ok(())
    }

    /// Polls `ready` until it answers 2xx (a command: until it answers `stock`), for
    /// `ready_ms`; fails early if the started service exits.
    fn await_ready(&self, running: &mut Running) -> Result<()> {
        let v = &running.variant;
        let name = &running.name;
        let limit = Duration::from_millis(v.ready_ms);
        let until = Instant::now() + limit;
        let mut last;
        loop {
            if crate::sys::process::interrupted() {
                bail!("interrupted while waiting for service.{name} to be ready");
            }
            if let Some(started) = &mut running.started
                && let Some(status) = started.exited()
            {
                bail!(
                    "service.{name}.start: the service exited before it was ready ({status}): {:?}; {}",
                    v.start.as_deref().unwrap_or_default(),
                    self.tail()
                );
            }
            match &mut *running.way.borrow_mut() {
                Way::Http(client) => match client.send(&v.ready, None, &[]) {
                    Reply::Answered { status, .. } if (200..300).contains(&status) => return Ok(()),
                    Reply::Answered { status, body } => last = format!("status {status}: {}", excerpt(&body)),
                    // A certificate sim does not trust stays untrusted: said at once.
                    Reply::Lost(why) | Reply::Refused(why) if why.contains("certificate") => bail!(
                        "service.{name}.url: sim does not trust the certificate of {} ({why}): give \
                         service.{name}.ca_file, the PEM certificate of the authority that signed it; {}",
                        mask_password(v.url.as_deref().unwrap_or_default()),
                        self.tail()
                    ),
                    Reply::Lost(why) | Reply::Refused(why) => last = why,
                },
                Way::Command(instance) => {
                    let mut line = Map::new();
                    line.insert("op".into(), "stock".into());
                    match instance.call(line) {
                        Ok(Said::Reply(_)) => return Ok(()),
                        Ok(Said::Silent) => last = "no answer to {\"op\": \"stock\"}".into(),
                        Err(e) => bail!("service.{name}.command: {e}; {}", self.tail()),
                    }
                }
            }
            if Instant::now() >= until {
                let what = match &v.command {
                    Some(_) => format!("service.{name}.command did not answer"),
                    None => format!(
                        "service.{name}.ready: {} {} did not answer 2xx",
                        v.ready,
                        mask_password(v.url.as_deref().unwrap_or_default())
                    ),
                };
                bail!(
                    "{what} within ready_ms = {} (the last try: {last}): check that the service listens there, or raise \
                     service.{name}.ready_ms; {}",
                    v.ready_ms,
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `reset` with the trial's initial stock.
    fn reset(&self, running: &Running, initial: i64) -> Result<()> {
        let (v, name) = (&running.variant, &running.name);
        match &mut *running.way.borrow_mut() {
            Way::Http(client) => {
                let body = v.reset_body.replace("{initial}", &initial.to_string());
                match client.send(&v.reset, Some(&body), &[]) {
                    Reply::Answered { status, .. } if (200..300).contains(&status) => Ok(()),
                    Reply::Answered { status, body } => bail!(
                        "service.{name}.reset: {} answered status {status} ({}), not 2xx; {}",
                        v.reset,
                        excerpt(&body),
                        self.tail()
                    ),
                    Reply::Lost(why) | Reply::Refused(why) => {
                        bail!(
                            "service.{name}.reset: {} got no answer: {why}; {}",
                            v.reset,
                            self.tail()
                        )
                    }
                }
            }
            Way::Command(instance) => {
                let mut line = Map::new();
                line.insert("op".into(), "reset".into());
                line.insert("stock".into(), initial.into());
                match instance.call(line) {
                    Ok(Said::Reply(r)) if r.get("ok").and_then(Value::as_bool) == Some(true) => Ok(()),
                    Ok(Said::Reply(r)) => bail!(
                        "service.{name}.command answered {} to reset, not {{\"ok\": true}}; {}",
                        Value::Object(r),
                        self.tail()
                    ),
                    Ok(Said::Silent) => bail!(
                        "service.{name}.command did not answer reset within timeout_ms; {}",
                        self.tail()
                    ),
                    Err(e) => bail!("service.{name}.command: {e}; {}", self.tail()),
                }
            }
        }
    }

    /// Reads `stock`: the stock left, or why it could not be read.
    fn stock(&self, running: &Running) -> Result<i64, String> {
        let (v, name) = (&running.variant, &running.name);
        let (json, what) = match &mut *running.way.borrow_mut() {
            Way::Http(client) => match client.send(&v.stock, None, &[]) {
                Reply::Answered { status, body } if (200..300).contains(&status) => (
                    serde_json::from_slice::<Value>(&body).map_err(|e| {
                        format!(
                            "service.{name}.stock: the reply to {} is not JSON ({e}): {}",
                            v.stock,
                            excerpt(&body)
                        )
                    })?,
                    format!("service.{name}.stock_pointer {:?}", v.stock_pointer),
                ),
                Reply::Answered { status, body } => {
                    return Err(format!(
                        "service.{name}.stock: {} answered status {status}: {}",
                        v.stock,
                        excerpt(&body)
                    ));
                }
                Reply::Lost(why) | Reply::Refused(why) => {
                    return Err(format!("service.{name}.stock: {} got no answer: {why}", v.stock));
                }
            },
            Way::Command(instance) => {
                let mut line = Map::new();
                line.insert("op".into(), "stock".into());
                match instance.call(line) {
                    Ok(Said::Reply(r)) => (Value::Object(r), format!("service.{name}.command's \"stock\"")),
                    Ok(Said::Silent) => {
                        return Err(format!("service.{name}.command did not answer stock within timeout_ms"));
                    }
                    Err(e) => return Err(format!("service.{name}.command: {e}")),
                }
            }
        };
        let pointer = match &v.command {
            Some(_) => "/stock",
            None => v.stock_pointer.as_str(),
        };
        match json.pointer(pointer).and_then(Value::as_i64) {
            Some(n) => Ok(n),
            None => Err(format!("{what} finds no whole number in {json}")),
        }
    }
}

impl super::Service for Shops {
    fn url(&self) -> &str {
        ""
    }

    fn begin_trial(&self, plan: &mut TrialPlan) -> Result<()> {
        let StrategyName::Service(variant) = plan.strategy else {
            bail!(
                "store \"service\" runs the variants of its [service.NAME] tables, not strategy \"{}\"",
                plan.strategy
            );
        };
        self.enter(variant.name())?;
        let current = self.current.borrow();
        let running = current.as_ref().expect("entered just now");
        self.reset(running, plan.initial_stock)?;
        plan.service = Some(running.variant.clone());
        plan.service_log = Some(self.log());
        plan.store_url = mask_password(running.variant.url.as_deref().unwrap_or_default());
        plan.store_secret_url = running.variant.url.clone();
        // A stock that cannot be read is found before the trial, not after it.
        match self.stock(running) {
            Ok(n) if n == plan.initial_stock => Ok(()),
            Ok(n) => bail!(
                "service.{}: after reset to {}, stock reads {n}: reset_body must set the stock ({:?}), and stock with \
                 stock_pointer read it; {}",
                running.name,
                plan.initial_stock,
                running.variant.reset_body,
                self.tail()
            ),
            Err(why) => bail!("{why}: fix `stock` or `stock_pointer`; {}", self.tail()),
        }
    }

    fn environment(&self) -> Vec<(&'static str, String)> {
        let current = self.current.borrow();
        let Some(running) = current.as_ref() else {
            return Vec::new();
        };
        let mut env = vec![(
            HEADERS_VARIABLE,
            serde_json::to_string(&running.headers).unwrap_or_default(),
        )];
        if let Some(url) = &running.variant.url {
            env.push((super::URL_VARIABLE, url.clone()));
        }
        env
    }

    fn final_stock(&self, _plan: &TrialPlan) -> Option<FinalStock> {
        let current = self.current.borrow();
        let running = current.as_ref()?;
        Some(match self.stock(running) {
            Ok(n) => FinalStock::Value(n),
            Err(why) => FinalStock::Unreadable(why),
        })
    }

    fn log_tail(&self) -> Option<String> {
        Some(self.tail())
    }
}
