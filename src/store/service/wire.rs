//! Plain HTTP/1.1 over one kept-alive TCP connection, for `http://` urls: a buyer makes one
//! request at a time, so the request is a few writes into a reused buffer and the reply one
//! or two reads. Through ureq's agent (a request builder, a header map and a uri parse per
//! request) two buyers made 0.3 – 0.45 of wrk's requests/s on one nginx endpoint here;
//! `https://` urls still go through ureq (rustls).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::http::Reply;
use crate::scenario::Endpoint;

/// The most a reply's head may hold.
const MAX_HEAD: usize = 64 * 1024;
/// The most a reply's body may hold.
const MAX_BODY: usize = 1 << 20;

/// One connection to an `http://` service, opened on first use and again after it closed.
pub struct Wire {
    /// `host:port`, as the url gives it (also the `Host` header).
    authority: String,
    /// The url's path before each endpoint's (without a trailing `/`).
    prefix: String,
    /// Every header but `Content-Length`, rendered once: `Name: value\r\n`…
    headers: Vec<u8>,
    timeout: Duration,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Wire {
    /// A client of `url` when it is `http://`; `None` for any other.
    pub fn new(url: &str, headers: &[(String, String)], timeout: Duration) -> Option<Wire> {
        let rest = url.strip_prefix("http://")?;
        let (authority, prefix) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return None; // a user in the url: ureq sends it as basic authentication
        }
        let mut block = format!("Host: {authority}\r\nUser-Agent: sim\r\nAccept: */*\r\n").into_bytes();
        for (name, value) in headers {
            block.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        Some(Wire {
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            headers: block,
            timeout,
            stream: None,
            out: Vec::with_capacity(512),
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `endpoint` with `body` and `extra` headers, and reads the reply.
    pub fn send(&mut self, endpoint: &Endpoint, body: Option<&str>, extra: &[(&str, &str)]) -> Reply {
        self.render(endpoint, body, extra);
        let reused = self.stream.is_some();
        match self.exchange() {
            // A kept-alive connection the service closed while idle: once more, on a new one.
            Err(Exchange::ClosedBeforeReply) if reused => {
                self.stream = None;
                let again = self.exchange();
                self.finish(again)
            }
            other => self.finish(other),
        }
    }

    fn finish(&mut self, result: Result<Reply, Exchange>) -> Reply {
        match result {
            Ok(reply) => reply,
            Err(e) => {
                self.stream = None;
                match e {
                    Exchange::Refused(why) => Reply::Refused(why),
                    Exchange::ClosedBeforeReply => Reply::Lost("the connection closed before a reply".into()),
                    Exchange::Lost(why) => Reply::Lost(why),
                }
            }
        }
    }

    fn render(&mut self, endpoint: &Endpoint, body: Option<&str>, extra: &[(&str, &str)]) {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(endpoint.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(endpoint.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&self.headers);
        for (name, value) in extra {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            out.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body.as_bytes());
    }

    fn connect(&self) -> Result<TcpStream, Exchange> {
        let addrs: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| Exchange::Refused(format!("{} cannot be resolved: {e}", self.authority)))?
            .collect();
        let mut last = Exchange::Refused(format!("{} has no address", self.authority));
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    stream.set_read_timeout(Some(self.timeout)).map_err(lost)?;
                    stream.set_write_timeout(Some(self.timeout)).map_err(lost)?;
                    return Ok(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last = Exchange::Lost(format!("connecting to {addr} timed out"));
                }
                Err(e) => last = Exchange::Refused(format!("connecting to {addr}: {e}")),
            }
        }
        Err(last)
    }

    fn exchange(&mut self) -> Result<Reply, Exchange> {
        if self.stream.is_none() {
            self.stream = Some(self.connect()?);
        }
        let stream = self.stream.as_mut().expect("connected just now");
        stream.write_all(&self.out).map_err(|_| Exchange::ClosedBeforeReply)?;
        self.buf.clear();
        let head_end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Exchange::Lost("the reply's head is longer than 64 KiB".into()));
            }
            if fill(stream, &mut self.buf)? == 0 {
                return Err(match self.buf.is_empty() {
                    true => Exchange::ClosedBeforeReply,
                    false => Exchange::Lost("the connection closed inside the reply's head".into()),
                });
            }
        };
        let head = Head::parse(&self.buf[..head_end])?;
        let mut body = self.buf.split_off(head_end);
        match head.length {
            Length::Exactly(n) => {
                while body.len() < n {
                    if fill(stream, &mut body)? == 0 {
                        return Err(Exchange::Lost("the connection closed inside the reply's body".into()));
                    }
                }
                body.truncate(n);
            }
            Length::Chunked => body = read_chunked(stream, body)?,
            Length::ToEnd => {
                while fill(stream, &mut body)? > 0 {}
                self.stream = None;
            }
        }
        if head.close {
            self.stream = None;
        }
        Ok(Reply::Answered {
            status: head.status,
            body,
        })
    }
}

/// Why an exchange did not give a reply.
enum Exchange {
    /// No connection could be made: the request never left.
    Refused(String),
    /// The connection ended before a byte of the reply.
    ClosedBeforeReply,
    /// A timeout, a reset, a reply sim cannot read.
    Lost(String),
}

fn lost(e: io::Error) -> Exchange {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Exchange::Lost("no reply within timeout_ms".into()),
        _ => Exchange::Lost(format!("the connection failed: {e}")),
    }
}

/// Reads what is there into `buf`: how many bytes (0 at the end of the stream).
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Exchange> {
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                if buf.len() + n > MAX_HEAD + MAX_BODY {
                    return Err(Exchange::Lost("the reply is longer than 1 MiB".into()));
                }
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && buf.is_empty() => {
                return Err(Exchange::ClosedBeforeReply);
            }
            Err(e) => return Err(lost(e)),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// How the body's end is known.
enum Length {
    Exactly(usize),
    Chunked,
    ToEnd,
}

/// What sim needs of a reply's head.
struct Head {
    status: u16,
    length: Length,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> Result<Head, Exchange> {
        let text = std::str::from_utf8(head).map_err(|_| Exchange::Lost("the reply's head is not text".into()))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut words = status_line.split(' ');
        let (version, status) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        let status: u16 = match (version.starts_with("HTTP/1."), status.parse()) {
            (true, Ok(s)) => s,
            _ => {
                return Err(Exchange::Lost(format!(
                    "the reply does not start as HTTP: {status_line:?}"
                )));
            }
        };
        let mut head = Head {
            status,
            length: Length::ToEnd,
            close: version == "HTTP/1.0",
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse()
                    .map_err(|_| Exchange::Lost(format!("Content-Length {value:?} is no number")))?;
                head.length = Length::Exactly(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
                head.length = Length::Chunked;
            } else if name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
        if matches!(head.status, 100..=199 | 204 | 304) {
            head.length = Length::Exactly(0);
        }
        Ok(head)
    }
}

/// The body of a chunked reply, whose first bytes are in `raw`.
fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>) -> Result<Vec<u8>, Exchange> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(end) = find(&raw[at..], b"\r\n") {
                break at + end;
            }
            if fill(stream, &mut raw)? == 0 {
                return Err(Exchange::Lost("the connection closed inside a chunked body".into()));
            }
        };
        let size_text = std::str::from_utf8(&raw[at..line_end]).unwrap_or("");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| Exchange::Lost(format!("a chunk's size {size_text:?} is no number")))?;
        let data = line_end + 2;
        // The chunk, its CRLF; the last (empty) chunk ends with an empty line.
        while raw.len() < data + size + 2 {
            if fill(stream, &mut raw)? == 0 {
                return Err(Exchange::Lost("the connection closed inside a chunk".into()));
            }
        }
        if size == 0 {
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(Exchange::Lost("the reply is longer than 1 MiB".into()));
        }
        body.extend_from_slice(&raw[data..data + size]);
        at = data + size + 2;
    }
}
