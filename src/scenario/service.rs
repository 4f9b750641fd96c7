//! `[service.NAME]`: the user's own service as the store (`store = "service"`). Each table is
//! a variant that runs as a strategy would, so that a racy and a fixed version of one shop
//! race side by side; sim only buys from it, over HTTP or through the user's command.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::raw::{RawScenario, RawService};
use super::validate::Validator;
use super::{ScenarioError, StrategyName, Variant, quoted};

/// A request line of a variant: `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Endpoint {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path and query, from `/`.
    pub path: String,
}

impl Endpoint {
    const METHODS: [&'static str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    fn parse(text: &str) -> Result<Endpoint, String> {
        let mut words = text.split_whitespace();
        let (Some(method), Some(path), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{text:?} is not a request line: write a method and a path, as \"POST /buy\""
            ));
        };
        if !Endpoint::METHODS.contains(&method) {
            return Err(format!(
                "{method:?} is not a method sim sends: use one of {}",
                quoted(Endpoint::METHODS.into_iter())
            ));
        }
        if !path.starts_with('/') {
            return Err(format!(
                "the path {path:?} must start with '/', as \"/buy\": it is added to `url`"
            ));
        }
        Ok(Endpoint {
            method: method.to_string(),
            path: path.to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(text: String) -> Result<Endpoint, String> {
        Endpoint::parse(&text)
    }
}

/// One `[service.NAME]` table, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceVariant {
    /// A command sim starts before the variant's trials and stops after them, in a process
    /// group of its own; `{port}` and `{dir}` in it are filled in.
    pub start: Option<String>,
    /// The service's base url (`{port}`, `{dir}` filled in); `None` with `command`.
    pub url: Option<String>,
    /// The command each buyer process starts and speaks JSON lines with; `None` with `url`.
    pub command: Option<String>,
    /// Polled until it answers 2xx, for `ready_ms`.
    pub ready: Endpoint,
    /// How long the service may take to answer `ready`.
    pub ready_ms: u64,
    /// Sent before each trial, with `reset_body`.
    pub reset: Endpoint,
    /// `{initial}` is the trial's initial stock.
    pub reset_body: String,
    /// A purchase.
    pub buy: Endpoint,
    /// `{buyer}`, `{attempt}` and `{key}` are the purchase's.
    pub buy_body: String,
    /// A JSON pointer into a 2xx reply to `buy`: the ticket sold.
    pub ticket: String,
    /// Statuses of a reply to `buy` that mean sold out.
    pub sold_out: Vec<u16>,
    /// Read after each trial: the stock left.
    pub stock: Endpoint,
    /// A JSON pointer into the reply to `stock`.
    pub stock_pointer: String,
    /// How long sim waits for a reply; then the purchase is indeterminate.
    pub timeout_ms: u64,
    /// An indeterminate purchase is sent again, with the same idempotency key, up to this
    /// many times.
    pub retries: u32,
    /// The header each purchase's idempotency key goes in (empty: none).
    pub idempotency_header: String,
    /// Headers sent with every request; `${VAR}` is taken from the environment when the
    /// variant starts. Their values are never shown or saved.
    #[serde(serialize_with = "masked_headers", default)]
    pub headers: BTreeMap<String, String>,
    /// PEM certificates an `https://` service's certificate must chain to, instead of the
    /// public roots: for a service with a certificate of its own making.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl ServiceVariant {
    /// Whether sim speaks to it through a command rather than over HTTP.
    pub fn is_command(&self) -> bool {
        self.command.is_some()
    }
}

/// Header values as `***`: what results.json and plan.json hold of them.
fn masked_headers<S: serde::Serializer>(headers: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    let masked: BTreeMap<&str, &str> = headers.keys().map(|k| (k.as_str(), "***")).collect();
    masked.serialize(s)
}

/// The variant names a scenario of the service store runs, from `strategy` (or every
/// `[service.NAME]` table, in the order of their names), each a table of the file.
pub(super) fn variants(
    v: &Validator,
    raw: &RawScenario,
) -> Result<(Vec<StrategyName>, BTreeMap<String, ServiceVariant>), ScenarioError> {
    let tables = raw.service.as_ref().filter(|t| !t.is_empty()).ok_or_else(|| {
        v.error(
            None,
            "service",
            "store \"service\" buys from your own service, and the file has no [service.NAME] table: \
             add one per variant, with `url` (HTTP) or `command` (JSON lines); see docs/reference/service.md"
                .into(),
        )
    })?;
    let mut services = BTreeMap::new();
    for (name, table) in tables {
        check_name(v, name, table.span())?;
        services.insert(name.clone(), variant(v, name, table)?);
    }
    let known = || quoted(tables.keys().map(String::as_str));
    let names: Vec<String> = match &raw.strategy {
        None => tables.keys().cloned().collect(),
        Some(value) => {
            let span = Some(value.span());
            let items: Vec<&toml::Value> = match value.get_ref() {
                toml::Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            if items.is_empty() {
                return Err(v.error(
                    span,
                    "strategy",
                    format!("the list is empty: name one or more of {}", known()),
                ));
            }
            let mut names = Vec::new();
            for item in items {
                let Some(name) = item.as_str().filter(|n| tables.contains_key(*n)) else {
                    return Err(v.error(
                        span,
                        "strategy",
                        format!(
                            "{item} is not a [service.NAME] table of this file: with store \"service\" each strategy is \
                             a variant of your service; name one of {}",
                            known()
                        ),
                    ));
                };
                if names.iter().any(|n| n == name) {
                    return Err(v.error(span, "strategy", format!("\"{name}\" is listed twice")));
                }
                names.push(name.to_string());
            }
            names
        }
    };
    Ok((
        names.iter().map(|n| StrategyName::Service(Variant::new(n))).collect(),
        services,
    ))
}

/// A variant's name names its folder of trials: letters, digits, '-' and '_'.
fn check_name(v: &Validator, name: &str, span: Range<usize>) -> Result<(), ScenarioError> {
    let fine =
        !name.is_empty() && name.len() <= 60 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if fine {
        return Ok(());
    }
    Err(v.error(
        Some(span),
        &format!("service.{name}"),
        format!("{name:?} cannot name a variant (and its folder of trials): use 1 to 60 letters, digits, '-' or '_'"),
    ))
}

/// Refuses `[service.NAME]` tables in a scenario whose store is another.
pub(super) fn refuse_tables(v: &Validator, raw: &RawScenario, store: &str) -> Result<(), ScenarioError> {
    match raw.service.as_ref().and_then(|t| t.iter().next()) {
        Some((name, table)) => Err(v.error(
            Some(table.span()),
            &format!("service.{name}"),
            format!(
                "[service.{name}] describes your own service, which only store \"service\" buys from, and this \
                 scenario's store is \"{store}\": set [stock] store = \"service\", or drop the table"
            ),
        )),
        None => Ok(()),
    }
}

fn variant(v: &Validator, name: &str, table: &Spanned<RawService>) -> Result<ServiceVariant, ScenarioError> {
    let r = table.get_ref();
    let field = |f: &str| format!("service.{name}.{f}");
    let text = |value: &Option<Spanned<String>>, default: &str| {
        value.as_ref().map_or(default.to_string(), |s| s.get_ref().clone())
    };
    let endpoint = |value: &Option<Spanned<String>>, f: &str, default: &str| -> Result<Endpoint, ScenarioError> {
        match value {
            None => Ok(Endpoint::parse(default).expect("a valid default")),
            Some(s) => Endpoint::parse(s.get_ref()).map_err(|why| v.error(Some(s.span()), &field(f), why)),
        }
    };
    let pointer = |value: &Option<Spanned<String>>, f: &str, default: &str| -> Result<String, ScenarioError> {
        let p = text(value, default);
        if !p.is_empty() && !p.starts_with('/') {
            return Err(v.error(
                value.as_ref().map(|s| s.span()),
                &field(f),
                format!("{p:?} is not a JSON pointer: write one from '/', as \"/ticket\" or \"/order/seat\" (\"\" is the whole reply)"),
            ));
        }
        Ok(p)
    };
    check_reach(v, name, table)?;
    let (url, command) = (r.url.as_ref(), r.command.as_ref());
    let (sold_out, headers) = statuses_and_headers(v, name, r)?;
    Ok(ServiceVariant {
        start: r.start.as_ref().map(|s| s.get_ref().clone()),
        url: url.map(|s| s.get_ref().trim_end_matches('/').to_string()),
        command: command.map(|s| s.get_ref().clone()),
        ready: endpoint(&r.ready, "ready", "GET /health")?,
        ready_ms: v.number(&r.ready_ms, &field("ready_ms"), 10_000, 1, 600_000, " (ten minutes)")?,
        reset: endpoint(&r.reset, "reset", "PUT /stock")?,
        reset_body: text(&r.reset_body, r#"{"stock": {initial}}"#),
        buy: endpoint(&r.buy, "buy", "POST /buy")?,
        buy_body: text(&r.buy_body, r#"{"buyer": {buyer}, "attempt": {attempt}}"#),
        ticket: pointer(&r.ticket, "ticket", "/ticket")?,
        sold_out,
        stock: endpoint(&r.stock, "stock", "GET /stock")?,
        stock_pointer: pointer(&r.stock_pointer, "stock_pointer", "/stock")?,
        timeout_ms: v.number(&r.timeout_ms, &field("timeout_ms"), 2_000, 1, 600_000, " (ten minutes)")?,
        retries: v.number(&r.retries, &field("retries"), 0, 0, 100, "")? as u32,
        idempotency_header: text(&r.idempotency_header, "Idempotency-Key"),
        headers,
        ca_file: ca_file(v, name, r)?,
    })
}

/// The certificates in PEM text (`ca_file`'s), whatever else it holds.
pub fn pem_certificates(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// `ca_file`: for an `https://` url, a file that holds PEM certificates.
fn ca_file(v: &Validator, name: &str, r: &RawService) -> Result<Option<std::path::PathBuf>, ScenarioError> {
    let Some(file) = &r.ca_file else {
        return Ok(None);
    };
    let field = format!("service.{name}.ca_file");
    let refuse = |why: String| Err(v.error(Some(file.span()), &field, why));
    if !r.url.as_ref().is_some_and(|u| u.get_ref().starts_with("https://")) {
        return refuse(
            "names the certificates an https:// service is trusted by, and this variant has no https:// url: \
             drop ca_file, or give the service an https:// url"
                .into(),
        );
    }
    let path = std::path::PathBuf::from(file.get_ref());
    match std::fs::read(&path) {
        Ok(pem) if !pem_certificates(&pem).is_empty() => Ok(Some(path)),
        Ok(_) => refuse(format!(
            "{} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"): give the certificate of the \
             authority that signed the service's, or the service's own if it signed it itself",
            path.display()
        )),
        Err(e) => refuse(format!(
            "{} cannot be read ({e}): give the path of a PEM certificate file, from the folder sim runs in",
            path.display()
        )),
    }
}

/// A variant's way in: `url` or `command`, not both, and no empty command line.
fn check_reach(v: &Validator, name: &str, table: &Spanned<RawService>) -> Result<(), ScenarioError> {
    let r = table.get_ref();
    let field = |f: &str| format!("service.{name}.{f}");
    let (url, command) = (r.url.as_ref(), r.command.as_ref());
    match (url, command) {
        (Some(_), Some(c)) => {
            return Err(v.error(
                Some(c.span()),
                &field("command"),
                "a variant is reached over HTTP (`url`) or through a command (`command`), not both: drop one".into(),
            ));
        }
        (None, None) => {
            return Err(v.error(
                Some(table.span()),
                &format!("service.{name}"),
                "says neither how to reach the service: give `url` (HTTP, as \"http://127.0.0.1:{port}\") or \
                 `command` (one per buyer process, speaking JSON lines)"
                    .into(),
            ));
        }
        _ => {}
    }
    if let Some(u) = url {
        let u = u.get_ref();
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(v.error(
                url.map(|s| s.span()),
                &field("url"),
                format!("{:?} is not an http:// or https:// url", super::mask_password(u)),
            ));
        }
    }
    for (value, f) in [(&r.start, "start"), (&r.command, "command")] {
        if let Some(s) = value
            && s.get_ref().trim().is_empty()
        {
            return Err(v.error(
                Some(s.span()),
                &field(f),
                "is empty: give the command line to run".into(),
            ));
        }
    }
    Ok(())
}

/// `sold_out` (4xx statuses) and `headers` (well-formed `${NAME}`s).
fn statuses_and_headers(
    v: &Validator,
    name: &str,
    r: &RawService,
) -> Result<(Vec<u16>, BTreeMap<String, String>), ScenarioError> {
    let field = |f: &str| format!("service.{name}.{f}");
    let sold_out = match &r.sold_out {
        None => vec![409],
        Some(list) => {
            let mut out = Vec::new();
            for &status in list.get_ref() {
                if !(400..=499).contains(&status) {
                    return Err(v.error(
                        Some(list.span()),
                        &field("sold_out"),
                        format!("{status} is not a 4xx status: sold out is a refusal, as 409 or 410"),
                    ));
                }
                out.push(status as u16);
            }
            out
        }
    };
    let headers = match &r.headers {
        None => BTreeMap::new(),
        Some(h) => {
            for (key, value) in h.get_ref() {
                if let Err(why) = super::secret::check_template(value) {
                    return Err(v.error(Some(h.span()), &field(&format!("headers.{key}")), why));
                }
            }
            h.get_ref().clone()
        }
    };
    Ok((sold_out, headers))
}

/// Refuses, with store `service`, the tables and fields that shape sim's own sale: the
/// service keeps its stock and its guard to itself.
pub(super) fn refuse_the_rest(v: &Validator, raw: &RawScenario) -> Result<(), ScenarioError> {
    let why = |field: &str, span: Option<Range<usize>>, what: &str| {
        Err(v.error(
            span,
            field,
            format!(
                "{what}, and with store \"service\" your service keeps its stock and its guard to itself: \
                 sim only buys from it; drop `{field}`"
            ),
        ))
    };
    if raw.producers.is_some() {
        return why(
            "producers",
            None,
            "producers feed sim's own buyers through an entry queue",
        );
    }
    if let Some(pool) = &raw.buyers.pool {
        return why(
            "buyers.pool",
            Some(pool.span()),
            "a pool runs sim's buyers' tasks on fewer processes",
        );
    }
    if let Some(hold) = &raw.buyers.hold_us {
        return why(
            "buyers.hold_us",
            Some(hold.span()),
            "hold_us is sim's race window between a read and a write",
        );
    }
    if let Some(p) = &raw.semaphore.permits {
        return why(
            "semaphore.permits",
            Some(p.span()),
            "[semaphore] belongs to sim's semaphore strategy",
        );
    }
    if raw.lock.scope.is_some() || raw.lock.lease_ms.is_some() || raw.lock.fencing.is_some() {
        return why("lock", None, "[lock] belongs to sim's lock strategies");
    }
    if raw.transaction.retries.is_some() || raw.transaction.isolation.is_some() {
        return why(
            "transaction",
            None,
            "[transaction] belongs to sim's strategies on PostgreSQL",
        );
    }
    if raw.faults.kill_seller.is_some() || raw.faults.kill_store.is_some() {
        return why(
            "faults",
            None,
            "kill_seller and kill_store hit sim's own seller and servers",
        );
    }
    Ok(())
}
