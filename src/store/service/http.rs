//! A variant's HTTP side: one kept-alive connection (ureq's agent, blocking, rustls for
//! https), its headers on every request, and replies read as sim judges them.

use std::time::Duration;

use super::wire::Wire;
use crate::scenario::Endpoint;

/// What came back for a request.
pub enum Reply {
    /// A status and the body.
    Answered {
        /// The HTTP status.
        status: u16,
        /// The body, as sent.
        body: Vec<u8>,
    },
    /// No reply sim could read: a timeout, a reset connection, a broken response.
    Lost(String),
    /// The connection was refused: the request never reached the service.
    Refused(String),
}

/// The client of one process: one connection kept alive to the service, plain for an
/// `http://` url ([`Wire`]), through ureq's agent (rustls) for `https://`.
pub enum Http {
    /// `http://`.
    Plain(Box<Wire>),
    /// `https://` (or a url with a user in it).
    Agent {
        /// The agent, which keeps the connection.
        agent: ureq::Agent,
        /// The url before each endpoint's path.
        base: String,
        /// Sent with every request.
        headers: Vec<(String, String)>,
    },
}

impl Http {
    /// A client of `base` (a url without a trailing '/') that sends `headers` with every
    /// request and gives up on a reply after `timeout`.
    /// With `ca_file`, an `https://` service's certificate must chain to one of the PEM
    /// certificates that file holds, instead of to the public roots.
    pub fn new(
        base: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
    ) -> std::io::Result<Http> {
        if let Some(wire) = Wire::new(base, &headers, timeout) {
            return Ok(Http::Plain(Box::new(wire)));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(file) = ca_file {
            let pem = std::fs::read(file)?;
            let certificates = crate::scenario::pem_certificates(&pem);
            if certificates.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} holds no PEM certificate",
                    file.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certificates)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            .user_agent("sim")
            .build()
            .into();
        Ok(Http::Agent {
            agent,
            base: base.to_string(),
            headers,
        })
    }

    /// Sends `endpoint` with `body` (none for an empty one) and `extra` headers.
    pub fn send(&mut self, endpoint: &Endpoint, body: Option<&str>, extra: &[(&str, &str)]) -> Reply {
        let (agent, base, headers) = match self {
            Http::Plain(wire) => return wire.send(endpoint, body, extra),
            Http::Agent { agent, base, headers } => (agent, base, headers),
        };
        let mut request = ureq::http::Request::builder()
            .method(endpoint.method.as_str())
            .uri(format!("{base}{}", endpoint.path));
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        for (name, value) in headers.iter() {
            request = request.header(name.as_str(), value.as_str());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = match request.body(body.unwrap_or("").to_string()) {
            Ok(r) => r,
            // A header name or value that HTTP does not allow: said without the value.
            Err(e) => return Reply::Lost(format!("the request could not be made: {e}")),
        };
        match agent.run(request) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                match response.body_mut().with_config().limit(1 << 20).read_to_vec() {
                    Ok(body) => Reply::Answered { status, body },
                    Err(e) => Reply::Lost(format!("the reply's body could not be read: {e}")),
                }
            }
            Err(ureq::Error::ConnectionFailed) => Reply::Refused("the connection failed".into()),
            Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Reply::Refused(format!("the connection was refused: {e}"))
            }
            Err(ureq::Error::Timeout(t)) => Reply::Lost(format!("no reply within the timeout ({t})")),
            Err(e) => Reply::Lost(e.to_string()),
        }
    }
}

/// The first 200 bytes of a body, as text, for messages.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(200)];
    let text = String::from_utf8_lossy(cut).replace('\n', " ");
    if body.len() > 200 { format!("{text}…") } else { text }
}
