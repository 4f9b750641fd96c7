//! A small blocking PostgreSQL client for the workers' hot path: one connection, statements
//! prepared once, each run as Bind, Execute and Sync in one write and read up to
//! ReadyForQuery, parameters and results in binary.
//!
//! Why not the `postgres` crate, which the runner keeps for its setup: it is a blocking
//! wrapper over `tokio-postgres`, and each statement crosses a channel to a connection task
//! and a runtime's `block_on`. That cost 72–86 µs a statement where `pgbench` spends 43–67
//! µs on the same one, on the same server. Here a statement is one `write` and the reads of
//! its answer, on the worker's own thread.
//!
//! It speaks what sim's workers need and nothing more: a Unix socket or TCP (`TCP_NODELAY`,
//! and the url's keepalives, on by default as in libpq),
//! no TLS (a url with `sslmode=require` is refused: the runner, which connects first with
//! the same url and no TLS, refuses it before any worker runs), trust, cleartext, MD5 and
//! SCRAM-SHA-256 authentication, `i32`, `i64`, `f64` and text parameters, and a statement's
//! first column of its first row. The url is parsed by the `postgres` crate's `Config`, so
//! that it means the same to the workers as to the runner. Errors never hold the password.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use postgres::config::{Host, SslMode, TargetSessionAttrs};
use postgres::fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{DataRowBody, ErrorFields, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::{IsNull, Oid, types};
use socket2::{SockRef, TcpKeepalive};

/// What went wrong, with the server's SQLSTATE when it was the server that refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server's ErrorResponse.
    #[error("{message} (SQLSTATE {code})")]
    Server {
        /// The SQLSTATE, e.g. `40001` for a serialization failure.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The connection failed or was closed: the server is gone, or ended the session
    /// without saying why.
    #[error("the connection to the server is lost: {0}")]
    Closed(#[source] io::Error),
    /// Anything else: a url this client cannot follow, an answer it did not expect.
    #[error("{0}")]
    Client(String),
}

impl Error {
    /// The server's SQLSTATE, if the server refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }
}

/// A failed read or write is a lost connection; a message that cannot be written or read
/// (a NUL inside a string, a garbled length) is this client's error.
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => Error::Client(e.to_string()),
            _ => Error::Closed(e),
        }
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

// The types of parameters and columns, as `pg_type` numbers them.
const INT4: Oid = 23;
const INT8: Oid = 20;
const FLOAT8: Oid = 701;
const TEXT: Oid = 25;

/// A value a statement takes as a parameter, in binary.
pub trait Param {
    /// Its type.
    fn oid(&self) -> Oid;
    /// Appends its binary form.
    fn encode(&self, buf: &mut BytesMut);
}

impl Param for i32 {
    fn oid(&self) -> Oid {
        INT4
    }
    fn encode(&self, buf: &mut BytesMut) {
        types::int4_to_sql(*self, buf)
    }
}

impl Param for i64 {
    fn oid(&self) -> Oid {
        INT8
    }
    fn encode(&self, buf: &mut BytesMut) {
        types::int8_to_sql(*self, buf)
    }
}

impl Param for f64 {
    fn oid(&self) -> Oid {
        FLOAT8
    }
    fn encode(&self, buf: &mut BytesMut) {
        types::float8_to_sql(*self, buf)
    }
}

impl Param for &str {
    fn oid(&self) -> Oid {
        TEXT
    }
    fn encode(&self, buf: &mut BytesMut) {
        types::text_to_sql(self, buf)
    }
}

/// A value a statement returns as a column, from binary; `Option` for one that may be NULL.
pub trait Column: Sized {
    /// Decodes the column of type `oid`, `None` when it is NULL.
    fn decode(oid: Oid, raw: Option<&[u8]>) -> Result<Self>;
}

impl Column for i64 {
    fn decode(oid: Oid, raw: Option<&[u8]>) -> Result<i64> {
        scalar(INT8, oid, raw, types::int8_from_sql)
    }
}

impl Column for f64 {
    fn decode(oid: Oid, raw: Option<&[u8]>) -> Result<f64> {
        scalar(FLOAT8, oid, raw, types::float8_from_sql)
    }
}

impl<T: Column> Column for Option<T> {
    fn decode(oid: Oid, raw: Option<&[u8]>) -> Result<Option<T>> {
        raw.map(|raw| T::decode(oid, Some(raw))).transpose()
    }
}

/// A column of type `expected`, not NULL, decoded by `from_sql`.
fn scalar<T>(
    expected: Oid,
    oid: Oid,
    raw: Option<&[u8]>,
    from_sql: impl FnOnce(&[u8]) -> Result<T, Box<dyn std::error::Error + Sync + Send>>,
) -> Result<T> {
    if oid != expected {
        return Err(Error::Client(format!("a column of type {oid} read as type {expected}")));
    }
    let raw = raw.ok_or_else(|| Error::Client("an unexpected NULL".into()))?;
    from_sql(raw).map_err(|e| Error::Client(format!("an unreadable column: {e}")))
}

/// A statement prepared on the server, with the types of its parameters and columns.
pub struct Statement {
    name: String,
    params: Vec<Oid>,
    columns: Vec<Oid>,
}

/// The socket to the server.
enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.flush(),
            Socket::Tcp(s) => s.flush(),
        }
    }
}

/// Where a server listens, as the url names it.
#[derive(Debug, PartialEq)]
enum Address {
    /// The socket file in the folder the url names (`host=/dir`).
    Unix(PathBuf),
    /// A host name or IP address, and a port.
    Tcp(String, u16),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Tcp(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl Address {
    /// Connects, within `timeout` (the url's `connect_timeout`) for each of a host name's
    /// addresses, as the `postgres` crate does, and keeps a TCP connection alive as
    /// `keepalive` says.
    fn open(&self, timeout: Option<Duration>, keepalive: Option<&TcpKeepalive>) -> io::Result<Socket> {
        match self {
            Address::Unix(path) => UnixStream::connect(path).map(Socket::Unix),
            Address::Tcp(host, port) => {
                let stream = match timeout {
                    None => TcpStream::connect((host.as_str(), *port))?,
                    Some(timeout) => {
                        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
                        let mut connected = None;
                        for address in (host.as_str(), *port).to_socket_addrs()? {
                            match TcpStream::connect_timeout(&address, timeout) {
                                Ok(stream) => {
                                    connected = Some(stream);
                                    break;
                                }
                                Err(e) => last = e,
                            }
                        }
                        connected.ok_or(last)?
                    }
                };
                // A statement is one small write awaiting its answer: never hold it back.
                stream.set_nodelay(true)?;
                if let Some(keepalive) = keepalive {
                    SockRef::from(&stream).set_tcp_keepalive(keepalive)?;
                }
                Ok(Socket::Tcp(stream))
            }
        }
    }
}

/// The url's keepalives (`keepalives`, `keepalives_idle`, `keepalives_interval`,
/// `keepalives_retries`), as the `postgres` crate sets them: on unless `keepalives=0`, so
/// that a worker waiting on a server that vanished from the network learns of it.
fn keepalive(config: &postgres::Config) -> Option<TcpKeepalive> {
    config.get_keepalives().then(|| {
        let mut keepalive = TcpKeepalive::new().with_time(config.get_keepalives_idle());
        if let Some(interval) = config.get_keepalives_interval() {
            keepalive = keepalive.with_interval(interval);
        }
        if let Some(retries) = config.get_keepalives_retries() {
            keepalive = keepalive.with_retries(retries);
        }
        keepalive
    })
}

/// The addresses the url names, to be tried in turn, as the `postgres` crate tries them.
fn addresses(config: &postgres::Config) -> Result<Vec<Address>> {
    if config.get_ssl_mode() == SslMode::Require {
        return Err(Error::Client(
            "the url requires TLS (sslmode=require), which sim's workers do not speak".into(),
        ));
    }
    let (hosts, hostaddrs, ports) = (config.get_hosts(), config.get_hostaddrs(), config.get_ports());
    Ok((0..hosts.len().max(hostaddrs.len()))
        .filter_map(|i| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            // An IP address (`hostaddr`) is dialled rather than its host's name.
            match (hostaddrs.get(i), hosts.get(i)) {
                (Some(ip), _) => Some(Address::Tcp(ip.to_string(), port)),
                (None, Some(Host::Tcp(host))) => Some(Address::Tcp(host.clone(), port)),
                (None, Some(Host::Unix(dir))) => Some(Address::Unix(dir.join(format!(".s.PGSQL.{port}")))),
                (None, None) => None,
            }
        })
        .collect())
}

/// A connection to PostgreSQL.
pub struct Client {
    /// Read through a buffer: one `read` takes in a whole answer.
    socket: BufReader<Socket>,
    /// The messages of one exchange, sent in one write. It is the write buffer: the
    /// protocol's encoders write into a `BytesMut`, so a `BufWriter` would only copy it.
    out: BytesMut,
    /// The message being read.
    inbox: BytesMut,
    /// Statements prepared so far, to name the next.
    prepared: usize,
}

impl Client {
    /// Connects and authenticates as the url (`postgres://…` or `host=… user=…`) says.
    pub fn connect(url: &str) -> Result<Client> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e| Error::Client(format!("an unreadable url: {e}")))?;
        let (mut failure, keepalive) = (None, keepalive(&config));
        for address in addresses(&config)? {
            let attempt = match address.open(config.get_connect_timeout().copied(), keepalive.as_ref()) {
                Ok(socket) => Client::start(socket, &config).and_then(|client| client.writable(&config)),
                Err(e) => Err(Error::Client(e.to_string())),
            };
            failure = Some(match attempt {
                Ok(client) => return Ok(client),
                // The server refused the session (a password, a full server): its SQLSTATE
                // stays, for the caller to tell the cases apart.
                Err(Error::Server { code, message }) => Error::Server {
                    code,
                    message: format!("connecting to {address}: {message}"),
                },
                Err(e) => Error::Client(format!("connecting to {address}: {e}")),
            });
        }
        Err(failure.unwrap_or_else(|| Error::Client("the url names no host".into())))
    }

    /// Starts the session on `socket` and authenticates.
    fn start(socket: Socket, config: &postgres::Config) -> Result<Client> {
        let mut client = Client {
            socket: BufReader::new(socket),
            out: BytesMut::with_capacity(512),
            inbox: BytesMut::with_capacity(512),
            prepared: 0,
        };
        let user = match config.get_user() {
            Some(user) => user.to_string(),
            None => whoami::username().map_err(|e| {
                Error::Client(format!(
                    "the url names no user, and this process's user is unknown: {e}"
                ))
            })?,
        };
        let mut parameters = vec![("user", user.as_str()), ("client_encoding", "UTF8")];
        parameters.extend(config.get_dbname().map(|db| ("database", db)));
        parameters.extend(config.get_options().map(|o| ("options", o)));
        parameters.extend(config.get_application_name().map(|a| ("application_name", a)));
        frontend::startup_message(parameters, &mut client.out)?;
        client.send()?;
        client.authenticate(user.as_bytes(), config.get_password())?;
        client.until_ready(|message| match message {
            Message::BackendKeyData(_) => Ok(()),
            _ => Err(unexpected()),
        })?;
        Ok(client)
    }

    /// The session, if the url asks for one that can write (`target_session_attrs=read-write`,
    /// as libpq and the `postgres` crate take it) and this server's can: a standby's cannot,
    /// and the next host of a multi-host url is tried.
    fn writable(mut self, config: &postgres::Config) -> Result<Client> {
        if config.get_target_session_attrs() != TargetSessionAttrs::ReadWrite {
            return Ok(self);
        }
        frontend::query("SHOW transaction_read_only", &mut self.out)?;
        self.send()?;
        let mut read_only = None;
        self.until_ready(|message| {
            if let Message::DataRow(row) = message {
                let mut ranges = row.ranges();
                if let Some(Some(range)) = ranges.next().map_err(|e| Error::Client(e.to_string()))? {
                    read_only = Some(&row.buffer()[range] == b"on");
                }
            }
            Ok(())
        })?;
        match read_only {
            Some(false) => Ok(self),
            _ => Err(Error::Client(
                "the server takes no writes (transaction_read_only), and the url asks for target_session_attrs=read-write".into(),
            )),
        }
    }

    /// Answers the server's requests for a password until it lets the session in.
    fn authenticate(&mut self, user: &[u8], password: Option<&[u8]>) -> Result<()> {
        let password =
            || password.ok_or_else(|| Error::Client("the server asks for a password, and the url has none".into()));
        let mut scram = None;
        loop {
            match self.receive()? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => frontend::password_message(password()?, &mut self.out)?,
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(user, password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.out)?;
                }
                Message::AuthenticationSasl(body) => {
                    if !body.mechanisms().any(|m| Ok(m == sasl::SCRAM_SHA_256))? {
                        return Err(Error::Client(
                            "the server offers no SASL mechanism sim's workers speak (SCRAM-SHA-256 without TLS)"
                                .into(),
                        ));
                    }
                    let exchange =
                        scram.insert(sasl::ScramSha256::new(password()?, sasl::ChannelBinding::unsupported()));
                    frontend::sasl_initial_response(sasl::SCRAM_SHA_256, exchange.message(), &mut self.out)?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let exchange = scram.as_mut().ok_or_else(unexpected)?;
                    exchange
                        .update(body.data())
                        .map_err(|e| Error::Client(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(exchange.message(), &mut self.out)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let exchange = scram.as_mut().ok_or_else(unexpected)?;
                    exchange
                        .finish(body.data())
                        .map_err(|e| Error::Client(format!("SCRAM: {e}")))?;
                    continue; // AuthenticationOk follows
                }
                Message::ErrorResponse(body) => return Err(server_error(body.fields())),
                _ => {
                    return Err(Error::Client(
                        "the server asks for an authentication sim's workers do not speak (trust, password, md5 and \
                         scram-sha-256 they do)"
                            .into(),
                    ));
                }
            }
            self.send()?;
        }
    }

    /// Runs `sql` as a simple query (`BEGIN …`, `COMMIT`, `SET …`), ignoring any rows.
    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        frontend::query(sql, &mut self.out)?;
        self.send()?;
        self.until_ready(|_| Ok(()))
    }

    /// Prepares `sql` as a named statement, to run many times.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let name = format!("s{}", self.prepared);
        self.prepared += 1;
        frontend::parse(&name, sql, [], &mut self.out)?;
        frontend::describe(b'S', &name, &mut self.out)?;
        frontend::sync(&mut self.out);
        self.send()?;
        let (mut params, mut columns) = (Vec::new(), Vec::new());
        self.until_ready(|message| {
            match message {
                Message::ParseComplete | Message::NoData => {}
                Message::ParameterDescription(body) => params = body.parameters().collect()?,
                Message::RowDescription(body) => columns = body.fields().map(|f| Ok(f.type_oid())).collect()?,
                _ => return Err(unexpected()),
            }
            Ok(())
        })?;
        Ok(Statement { name, params, columns })
    }

    /// Runs `statement`: the rows it affected.
    pub fn execute(&mut self, statement: &Statement, params: &[&dyn Param]) -> Result<u64> {
        self.run(statement, params).map(|(_, rows)| rows)
    }

    /// Runs `statement`: the first column of its row, if it returned one.
    pub fn query_opt<T: Column>(&mut self, statement: &Statement, params: &[&dyn Param]) -> Result<Option<T>> {
        let (row, _) = self.run(statement, params)?;
        let Some(row) = row else { return Ok(None) };
        let (oid, range) = (statement.columns.first())
            .zip(row.ranges().next()?)
            .ok_or_else(|| Error::Client("a row without columns".into()))?;
        T::decode(*oid, range.map(|r| &row.buffer()[r])).map(Some)
    }

    /// Runs `statement`: the first column of its row, which it must return.
    pub fn query_one<T: Column>(&mut self, statement: &Statement, params: &[&dyn Param]) -> Result<T> {
        self.query_opt(statement, params)?
            .ok_or_else(|| Error::Client("the statement returned no row".into()))
    }

    /// Binds `params` to `statement` and executes it: its first row, if any, and the rows it
    /// affected.
    fn run(&mut self, statement: &Statement, params: &[&dyn Param]) -> Result<(Option<DataRowBody>, u64)> {
        if !params.iter().map(|p| p.oid()).eq(statement.params.iter().copied()) {
            let given: Vec<Oid> = params.iter().map(|p| p.oid()).collect();
            return Err(Error::Client(format!(
                "statement {} takes parameters of types {:?}, given {given:?}",
                statement.name, statement.params
            )));
        }
        let bound = frontend::bind(
            "",
            &statement.name,
            [1],
            params,
            |param, buf| {
                param.encode(buf);
                Ok(IsNull::No)
            },
            [1],
            &mut self.out,
        );
        if bound.is_err() {
            return Err(Error::Client("the parameters do not fit in a message".into()));
        }
        frontend::execute("", 0, &mut self.out)?;
        frontend::sync(&mut self.out);
        self.send()?;
        let (mut first, mut rows) = (None, 0);
        self.until_ready(|message| {
            match message {
                Message::BindComplete | Message::EmptyQueryResponse => {}
                Message::DataRow(row) => {
                    first.get_or_insert(row);
                }
                Message::CommandComplete(body) => rows = affected(body.tag()?),
                _ => return Err(unexpected()),
            }
            Ok(())
        })?;
        Ok((first, rows))
    }

    /// Sends what `out` holds, in one write. A server that ended the session may have said
    /// why before it closed (an idle-in-transaction timeout): that, rather than the broken
    /// pipe, is the error.
    fn send(&mut self) -> Result<()> {
        let sent = self.socket.get_mut().write_all(&self.out);
        self.out.clear();
        match sent {
            Ok(()) => Ok(()),
            Err(e) => match self.until_ready(|_| Ok(())) {
                Err(server @ Error::Server { .. }) => Err(server),
                _ => Err(Error::Closed(e)),
            },
        }
    }

    /// Reads to ReadyForQuery, handing each message to `each`. The first error, the
    /// server's or `each`'s, is returned once the server is ready again; if the connection
    /// ends first (a FATAL error), the server's error still is.
    fn until_ready(&mut self, mut each: impl FnMut(Message) -> Result<()>) -> Result<()> {
        let mut failure = None;
        loop {
            let message = match self.receive() {
                Ok(message) => message,
                Err(e) => return Err(failure.unwrap_or(e)),
            };
            match message {
                Message::ReadyForQuery(_) => return failure.map_or(Ok(()), Err),
                Message::ErrorResponse(body) => {
                    failure.get_or_insert(server_error(body.fields()));
                }
                message if failure.is_none() => failure = each(message).err(),
                _ => {}
            }
        }
    }

    /// The next message, past the notices and parameter changes the server may send at any
    /// time.
    fn receive(&mut self) -> Result<Message> {
        loop {
            let mut header = [0u8; 5];
            self.socket.read_exact(&mut header)?;
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if length < 4 {
                return Err(Error::Client(format!("a message of length {length}")));
            }
            self.inbox.clear();
            self.inbox.extend_from_slice(&header);
            self.inbox.resize(1 + length, 0);
            self.socket.read_exact(&mut self.inbox[header.len()..])?;
            match Message::parse(&mut self.inbox)? {
                Some(Message::NoticeResponse(_) | Message::ParameterStatus(_) | Message::NotificationResponse(_)) => {}
                Some(message) => return Ok(message),
                None => return Err(unexpected()),
            }
        }
    }
}

/// Ends the session politely, so that the server does not log a client that vanished.
impl Drop for Client {
    fn drop(&mut self) {
        self.out.clear();
        frontend::terminate(&mut self.out);
        let _ = self.socket.get_mut().write_all(&self.out);
    }
}

/// The rows a command affected, the last number of its tag (`UPDATE 1`, `INSERT 0 1`).
fn affected(tag: &str) -> u64 {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The server's error: its SQLSTATE and message.
fn server_error(mut fields: ErrorFields<'_>) -> Error {
    let (mut code, mut message) = (String::new(), String::new());
    let read = (|| {
        while let Some(field) = fields.next()? {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'C' => code = value,
                b'M' => message = value,
                _ => {}
            }
        }
        Ok::<_, io::Error>(())
    })();
    match read {
        Ok(()) => Error::Server { code, message },
        Err(e) => Error::Client(format!("an unreadable error from the server: {e}")),
    }
}

fn unexpected() -> Error {
    Error::Client("an unexpected message from the server".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses_of(url: &str) -> Result<Vec<Address>> {
        addresses(&url.parse().expect("a url the postgres crate reads"))
    }

    #[test]
    fn a_url_or_conninfo_names_a_socket_file_or_hosts_in_turn() {
        let unix = |path: &str| Address::Unix(PathBuf::from(path));
        let tcp = |host: &str, port| Address::Tcp(host.into(), port);
        assert_eq!(
            addresses_of("host=/run/pg port=5433 user=sim dbname=postgres").unwrap(),
            [unix("/run/pg/.s.PGSQL.5433")]
        );
        assert_eq!(
            addresses_of("postgresql://owner:hunter2@%2Ftmp%2Fpg/postgres").unwrap(),
            [unix("/tmp/pg/.s.PGSQL.5432")]
        );
        assert_eq!(
            addresses_of("postgres://u:pw@db.example:6000,other/shop").unwrap(),
            [tcp("db.example", 6000), tcp("other", 5432)]
        );
        assert_eq!(
            addresses_of("host=db.example hostaddr=127.0.0.1 port=1 user=u").unwrap(),
            [tcp("127.0.0.1", 1)]
        );
        let tls = addresses_of("postgres://u@db.example/shop?sslmode=require").unwrap_err();
        assert!(tls.to_string().contains("sslmode=require"), "{tls}");
    }

    #[test]
    fn a_refused_connection_names_the_address_and_never_the_password() {
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        let dir = missing.to_string_lossy().replace('/', "%2F");
        for (url, address) in [
            (
                "postgres://buyer:hunter2@127.0.0.1:1/shop".to_string(),
                "127.0.0.1:1".to_string(),
            ),
            (
                "host=127.0.0.1 port=1 user=buyer password=hunter2".to_string(),
                "127.0.0.1:1".into(),
            ),
            (
                format!("postgresql://buyer:hunter2@{dir}/shop"),
                missing.display().to_string(),
            ),
        ] {
            let e = Client::connect(&url).err().expect("nothing listens there");
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(text.contains(&address) && !text.contains("hunter2"), "{text}");
            }
        }
    }

    #[test]
    fn a_server_that_never_answers_the_connection_is_given_up_after_connect_timeout() {
        // A listener whose queue of accepted connections is full: the kernel drops the next
        // SYN, so a connection to it hangs until the client gives up.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // Listening again only changes its backlog.
        SockRef::from(&listener).listen(0).unwrap();
        let port = listener.local_addr().unwrap().port();
        let filled: Vec<TcpStream> = (0..4)
            .map_while(|_| TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).ok())
            .collect();
        assert!(
            !filled.is_empty() && filled.len() < 4,
            "the queue filled after {}",
            filled.len()
        );
        let started = std::time::Instant::now();
        let url = format!("host=127.0.0.1 port={port} user=buyer connect_timeout=1");
        let e = Client::connect(&url).err().expect("the connection is never accepted");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
            "{waited:?}"
        );
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn a_tcp_connection_is_kept_alive_as_the_url_says() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = |url: &str| {
            let config: postgres::Config = url.parse().unwrap();
            let address = Address::Tcp("127.0.0.1".into(), port);
            match address.open(None, keepalive(&config).as_ref()).unwrap() {
                Socket::Tcp(stream) => stream,
                Socket::Unix(_) => unreachable!("a TCP address"),
            }
        };
        let url = format!("host=127.0.0.1 port={port} user=u");
        let stream = open(&format!(
            "{url} keepalives_idle=7 keepalives_interval=3 keepalives_retries=4"
        ));
        let socket = SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(3));
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
        assert!(socket.tcp_nodelay().unwrap());
        // libpq's default: on, after two hours idle.
        let stream = open(&url);
        let socket = SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(2 * 60 * 60));
        let stream = open(&format!("{url} keepalives=0"));
        assert!(!SockRef::from(&stream).keepalive().unwrap());
    }

    #[test]
    fn a_session_the_server_refuses_keeps_its_sqlstate_and_names_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(".s.PGSQL.5432");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut theirs, _) = listener.accept().unwrap();
            read_message(&mut theirs, false);
            let full = error("FATAL", "53300", "sorry, too many clients already");
            theirs.write_all(&full).unwrap();
        });
        let url = format!("host={} user=sim password=hunter2", dir.path().display());
        let e = Client::connect(&url).err().expect("the server refuses");
        server.join().unwrap();
        assert_eq!(e.code(), Some("53300"));
        let text = e.to_string();
        assert!(
            text.contains(&socket.display().to_string()) && text.contains("too many clients"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    /// A server on a socket in a folder of its own that lets a session in and answers `SHOW
    /// transaction_read_only` with `read_only`; the folder, and the thread.
    fn server_that_is(read_only: &'static str) -> (tempfile::TempDir, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join(".s.PGSQL.5432")).unwrap();
        let server = std::thread::spawn(move || {
            let (mut theirs, _) = listener.accept().unwrap();
            read_message(&mut theirs, false);
            theirs.write_all(&message(b'R', &0u32.to_be_bytes())).unwrap(); // AuthenticationOk
            theirs.write_all(&message(b'Z', b"I")).unwrap();
            let (tag, body) = read_message(&mut theirs, true);
            assert_eq!((tag, body.as_slice()), (b'Q', &b"SHOW transaction_read_only\0"[..]));
            let mut row = 1u16.to_be_bytes().to_vec();
            row.extend_from_slice(&(read_only.len() as u32).to_be_bytes());
            row.extend_from_slice(read_only.as_bytes());
            theirs.write_all(&message(b'D', &row)).unwrap();
            theirs.write_all(&message(b'C', b"SHOW\0")).unwrap();
            theirs.write_all(&message(b'Z', b"I")).unwrap();
            let mut rest = Vec::new();
            let _ = theirs.read_to_end(&mut rest); // until the client goes
        });
        (dir, server)
    }

    #[test]
    fn a_url_that_asks_for_read_write_skips_a_standby_for_the_next_host() {
        let (standby, first) = server_that_is("on");
        let (primary, second) = server_that_is("off");
        let url = format!(
            "host={},{} user=sim target_session_attrs=read-write",
            standby.path().display(),
            primary.path().display()
        );
        let client = Client::connect(&url).unwrap();
        drop(client);
        first.join().unwrap();
        second.join().unwrap();
        let (standby, only) = server_that_is("on");
        let url = format!(
            "host={} user=sim target_session_attrs=read-write",
            standby.path().display()
        );
        let e = Client::connect(&url).err().expect("a standby alone is refused");
        assert!(e.to_string().contains("read-write"), "{e}");
        only.join().unwrap();
    }

    /// A backend message: its tag, length and body.
    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    /// An ErrorResponse of `severity`, `code` and `text`.
    fn error(severity: &str, code: &str, text: &str) -> Vec<u8> {
        let body = format!("S{severity}\0C{code}\0M{text}\0\0");
        message(b'E', body.as_bytes())
    }

    /// The next frontend message: its tag (none for the startup message) and body.
    fn read_message(server: &mut UnixStream, tagged: bool) -> (u8, Vec<u8>) {
        let mut tag = [0u8];
        if tagged {
            server.read_exact(&mut tag).unwrap();
        }
        let mut length = [0u8; 4];
        server.read_exact(&mut length).unwrap();
        let mut body = vec![0; u32::from_be_bytes(length) as usize - 4];
        server.read_exact(&mut body).unwrap();
        (tag[0], body)
    }

    /// A client connected to a server played by `script` on the other end of a socket pair,
    /// which has already asked for an MD5 password, checked it and let the session in.
    fn client_of(script: impl FnOnce(&mut UnixStream) + Send + 'static) -> (Client, std::thread::JoinHandle<()>) {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let (_, startup) = read_message(&mut theirs, false);
            assert!(startup.windows(4).any(|w| w == b"sim\0"), "the user is sent");
            let salt = [1, 2, 3, 4];
            theirs.write_all(&message(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])).unwrap();
            let (tag, password) = read_message(&mut theirs, true);
            assert_eq!(tag, b'p');
            assert_eq!(
                password,
                [md5_hash(b"sim", b"hunter2", salt).as_bytes(), b"\0"].concat()
            );
            theirs.write_all(&message(b'R', &[0, 0, 0, 0])).unwrap();
            theirs.write_all(&message(b'S', b"TimeZone\0UTC\0")).unwrap();
            theirs.write_all(&message(b'K', &[0, 0, 0, 7, 0, 0, 0, 9])).unwrap();
            theirs.write_all(&message(b'Z', b"I")).unwrap();
            script(&mut theirs);
        });
        let config = "host=/nowhere user=sim password=hunter2".parse().unwrap();
        let client = Client::start(Socket::Unix(ours), &config).expect("a session");
        (client, server)
    }

    #[test]
    fn an_error_response_carries_its_sqlstate_and_the_session_goes_on() {
        let (mut client, server) = client_of(|theirs| {
            for answer in [
                error("ERROR", "40001", "could not serialize access due to concurrent update"),
                message(b'C', b"COMMIT\0"),
            ] {
                let (tag, sql) = read_message(theirs, true);
                assert_eq!((tag, sql.as_slice()), (b'Q', &b"COMMIT\0"[..]));
                theirs.write_all(&[answer, message(b'Z', b"I")].concat()).unwrap();
            }
        });
        let e = client.batch_execute("COMMIT").unwrap_err();
        assert_eq!(e.code(), Some("40001"));
        assert!(!e.is_closed());
        assert_eq!(
            e.to_string(),
            "could not serialize access due to concurrent update (SQLSTATE 40001)"
        );
        client.batch_execute("COMMIT").expect("the session is ready again");
        server.join().unwrap();
    }

    #[test]
    fn a_server_that_ends_the_session_is_heard_before_the_broken_pipe() {
        // The server's idle-in-transaction timeout: a FATAL error, then it closes.
        let (mut client, server) = client_of(|theirs| {
            let timeout = error(
                "FATAL",
                "25P03",
                "terminating connection due to idle-in-transaction timeout",
            );
            theirs.write_all(&timeout).unwrap();
        });
        server.join().unwrap();
        let e = client.batch_execute("SELECT 1").unwrap_err();
        assert_eq!(e.code(), Some("25P03"), "{e}");
        // Gone without a word (killed): the connection is closed.
        let e = client.batch_execute("SELECT 1").unwrap_err();
        assert!(e.is_closed(), "{e}");
    }
}
