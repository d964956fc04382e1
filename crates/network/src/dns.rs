//! The embedded DNS server: for each container on a user-defined network, UDP and TCP sockets
//! bound to 127.0.0.11:53 inside the container's namespace, served by the daemon's runtime.
//! Names the engine knows (container names, aliases, links) are answered from [`Names`];
//! everything else is forwarded to the upstream resolvers.
//!
//! Replies mimic Docker's resolver: TTL 600, RA set, AA clear, a known name without an address
//! of the asked family answers NOERROR with no records (musl asks for A and AAAA at once and
//! gives up on the name if either fails), and upstream replies are passed through untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::IpNet;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::error::{NetworkError, Result};

/// The engine's view of names, as seen by one container.
pub trait Names: Send + Sync + 'static {
    /// The addresses `name` (lower-case, without the trailing dot) has for `container`, from
    /// the networks it is connected to; None when the name is not one of ours.
    fn lookup(&self, container: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The name for a reverse lookup of `ip` on `container`'s networks.
    fn reverse(&self, container: &str, ip: IpAddr) -> Option<String>;
    /// Where other queries go (the container's `--dns` or the host's resolvers).
    fn upstreams(&self, container: &str) -> Vec<SocketAddr>;
}

/// Where containers find the server, as in Docker.
const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);
/// Docker's TTL for the names it answers.
const TTL: u32 = 600;
/// How long one upstream gets before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// A TCP client silent this long (or not reading its reply) is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Per container: UDP queries being answered at once; beyond that, packets wait in the socket
/// buffer, so one noisy container cannot make the daemon hold unbounded state.
const MAX_UDP_IN_FLIGHT: usize = 64;
/// Per container: open TCP connections; further ones wait in the listen backlog.
const MAX_TCP_CONNECTIONS: usize = 16;
/// The EDNS payload size we advertise in our own replies (the usual unfragmented size).
const EDNS_PAYLOAD: u16 = 1232;
const HEADER_LEN: usize = 12;
/// Upstream replies can be as large as the client's EDNS size; one UDP datagram at most.
const MAX_DATAGRAM: usize = 65535;
/// Queries are small; this buffer lives as long as the container, so it is not a datagram's
/// maximum (a longer query arrives cut, fails to parse and is ignored).
const MAX_QUERY: usize = 4096;

pub struct DnsService {
    names: Arc<dyn Names>,
}

/// Serving stops when this is dropped: the tasks are aborted and the runtime drops them, and
/// with them the sockets that pin the container's namespace, as soon as it next runs them. Use
/// [`DnsListener::close`] to wait until the sockets are closed.
pub struct DnsListener {
    tasks: Vec<JoinHandle<()>>,
}

impl DnsListener {
    /// Stops serving and returns once both sockets are closed (127.0.0.11:53 is free again and
    /// nothing of ours holds the namespace).
    pub async fn close(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            // Cancelled is the expected outcome; a panic was already reported by the runtime.
            let _ = task.await;
        }
    }
}

impl Drop for DnsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl DnsService {
    pub fn new(names: Arc<dyn Names>) -> DnsService {
        DnsService { names }
    }

    /// Binds 127.0.0.11:53 (UDP and TCP) inside `netns` and answers queries for `container`.
    pub async fn serve_in(&self, container: &str, netns: &Path) -> Result<DnsListener> {
        let (udp, tcp) = bind_in(netns).await?;
        // from_std registers the sockets with the caller's runtime, which serves them from
        // here on; upstream sockets are opened by these tasks, in the daemon's namespace.
        let bound = UdpSocket::from_std(udp).and_then(|udp| Ok((udp, TcpListener::from_std(tcp)?)));
        let (udp, tcp) = bound.map_err(|e| bind_error(netns, e))?;
        let resolver = Arc::new(Resolver {
            names: Arc::clone(&self.names),
            container: container.to_owned(),
        });
        debug!(container, netns = %netns.display(), "dns: serving 127.0.0.11:53");
        Ok(DnsListener {
            tasks: vec![
                tokio::spawn(serve_udp(udp, Arc::clone(&resolver))),
                tokio::spawn(serve_tcp(tcp, resolver)),
            ],
        })
    }
}

fn bind_error(netns: &Path, e: std::io::Error) -> NetworkError {
    NetworkError::Dns(format!("bind {LISTEN} in {}: {e}", netns.display()))
}

/// Opens the two sockets on a thread inside `netns`; sockets keep the namespace they were made
/// in, whoever uses them later.
async fn bind_in(netns: &Path) -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let path: PathBuf = netns.to_path_buf();
    let bound = tokio::task::spawn_blocking(move || {
        crate::netns::run_in(&path, || -> std::io::Result<_> {
            let udp = std::net::UdpSocket::bind(LISTEN)?;
            let tcp = std::net::TcpListener::bind(LISTEN)?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })
    })
    .await
    .map_err(|e| NetworkError::Dns(format!("bind {LISTEN} in {}: {e}", netns.display())))?;
    bound?.map_err(|e| bind_error(netns, e))
}

/// Answers datagrams; replies to several clients are worked on at once within this one task
/// (a slow upstream must not hold up container names).
async fn serve_udp(socket: UdpSocket, resolver: Arc<Resolver>) {
    let mut in_flight = FuturesUnordered::new();
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf), if in_flight.len() < MAX_UDP_IN_FLIGHT => {
                match received {
                    Ok((len, peer)) => {
                        let packet = buf[..len].to_vec();
                        in_flight.push(reply_udp(&resolver, &socket, packet, peer));
                    }
                    Err(e) => debug!(error = %e, "dns: udp receive"),
                }
            }
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

async fn reply_udp(resolver: &Resolver, socket: &UdpSocket, packet: Vec<u8>, peer: SocketAddr) {
    if let Some(reply) = resolver.handle(&packet, Transport::Udp).await {
        if let Err(e) = socket.send_to(&reply, peer).await {
            debug!(%peer, error = %e, "dns: udp send");
        }
    }
}

async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    let mut connections = FuturesUnordered::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_TCP_CONNECTIONS => {
                match accepted {
                    Ok((stream, _)) => connections.push(serve_connection(&resolver, stream)),
                    Err(e) => {
                        // Typically EMFILE: pause rather than spin on a listener that stays ready.
                        debug!(error = %e, "dns: tcp accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            Some(()) = connections.next(), if !connections.is_empty() => {}
        }
    }
}

/// Length-prefixed queries, answered in order, until the client closes, goes idle, or sends
/// something that is not a query.
async fn serve_connection(resolver: &Resolver, mut stream: TcpStream) {
    loop {
        let packet = match timeout(TCP_IDLE, read_frame(&mut stream)).await {
            Ok(Ok(Some(packet))) => packet,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                debug!(error = %e, "dns: tcp read");
                return;
            }
        };
        let Some(reply) = resolver.handle(&packet, Transport::Tcp).await else {
            return;
        };
        match timeout(TCP_IDLE, write_frame(&mut stream, &reply)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "dns: tcp write");
                return;
            }
            Err(_) => return,
        }
    }
}

/// One length-prefixed message; None at a clean end of stream.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut packet).await?;
    Ok(Some(packet))
}

async fn write_frame(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("dns message longer than 65535 bytes"))?;
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

/// What one container's server knows.
struct Resolver {
    names: Arc<dyn Names>,
    container: String,
}

impl Resolver {
    /// The bytes to send back for `packet`, or None when it deserves no answer (not a DNS
    /// query, or one without a question).
    async fn handle(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let query = match Message::from_vec(packet) {
            Ok(query) => query,
            Err(e) => {
                debug!(container = %self.container, error = %e, "dns: malformed query ignored");
                return None;
            }
        };
        if query.metadata.message_type != MessageType::Query || query.queries.is_empty() {
            return None;
        }
        let limit = match transport {
            Transport::Udp => usize::from(query.max_payload()),
            Transport::Tcp => usize::from(u16::MAX),
        };
        if let Some(answers) = self.local_answers(&query) {
            let mut reply = reply_to(&query, ResponseCode::NoError);
            reply.answers = answers;
            return encode(reply, limit);
        }
        if let Some(reply) = self.forward(packet, transport).await {
            return Some(reply);
        }
        encode(reply_to(&query, ResponseCode::ServFail), limit)
    }

    /// The answer section when the question is about one of our names; None to forward.
    fn local_answers(&self, query: &Message) -> Option<Vec<Record>> {
        let [question] = query.queries.as_slice() else {
            return None;
        };
        if query.metadata.op_code != OpCode::Query || question.query_class() != DNSClass::IN {
            return None;
        }
        match question.query_type() {
            RecordType::A | RecordType::AAAA => self.addresses(question),
            RecordType::PTR => self.pointer(question),
            _ => None,
        }
    }

    fn addresses(&self, question: &Query) -> Option<Vec<Record>> {
        let mut addrs = self
            .names
            .lookup(&self.container, &lookup_key(question.name()))?;
        // Round robin between the containers behind one alias, as Docker does.
        addrs.shuffle(&mut rand::rng());
        let wanted = question.query_type();
        let records = addrs
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) if wanted == RecordType::A => Some(RData::A(A(v4))),
                IpAddr::V6(v6) if wanted == RecordType::AAAA => Some(RData::AAAA(AAAA(v6))),
                _ => None,
            })
            .map(|rdata| Record::from_rdata(question.name().clone(), TTL, rdata))
            .collect();
        Some(records)
    }

    fn pointer(&self, question: &Query) -> Option<Vec<Record>> {
        let ip = arpa_address(question.name())?;
        let host = self.names.reverse(&self.container, ip)?;
        let mut target = match Name::from_ascii(&host) {
            Ok(target) => target,
            Err(e) => {
                warn!(container = %self.container, %host, error = %e, "dns: unusable reverse name");
                return None;
            }
        };
        target.set_fqdn(true);
        let record = Record::from_rdata(question.name().clone(), TTL, RData::PTR(PTR(target)));
        Some(vec![record])
    }

    /// The first usable upstream reply, byte for byte; None when there is none.
    async fn forward(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        for upstream in self.names.upstreams(&self.container) {
            let exchanged = match transport {
                Transport::Udp => timeout(UPSTREAM_TIMEOUT, exchange_udp(upstream, packet)).await,
                Transport::Tcp => timeout(UPSTREAM_TIMEOUT, exchange_tcp(upstream, packet)).await,
            };
            let reply = match exchanged {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    debug!(container = %self.container, %upstream, ?transport, error = %e, "dns: upstream failed");
                    continue;
                }
                Err(_) => {
                    debug!(container = %self.container, %upstream, ?transport, "dns: upstream timed out");
                    continue;
                }
            };
            // As Docker: SERVFAIL and REFUSED may be one server's trouble; ask the next one.
            match reply[3] & 0x0f {
                2 | 5 => {
                    debug!(container = %self.container, %upstream, "dns: upstream refused or failed")
                }
                _ => return Some(reply),
            }
        }
        None
    }
}

/// The name as [`Names::lookup`] takes it.
fn lookup_key(name: &Name) -> String {
    let name = name.to_lowercase().to_ascii();
    match name.strip_suffix('.') {
        Some(stripped) => stripped.to_owned(),
        None => name,
    }
}

/// The address a full `in-addr.arpa` / `ip6.arpa` name stands for (not a partial network).
fn arpa_address(name: &Name) -> Option<IpAddr> {
    match name.parse_arpa_name().ok()? {
        IpNet::V4(net) if net.prefix_len() == 32 => Some(IpAddr::V4(net.addr())),
        IpNet::V6(net) if net.prefix_len() == 128 => Some(IpAddr::V6(net.addr())),
        _ => None,
    }
}

/// A reply carrying the query's id and question, with Docker's flags.
fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.checking_disabled = query.metadata.checking_disabled;
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = code;
    reply.queries = query.queries.clone();
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.edns = Some(edns);
    }
    reply
}

/// Serialises `reply`, dropping answers (and setting TC) until it fits the client's limit.
fn encode(mut reply: Message, limit: usize) -> Option<Vec<u8>> {
    loop {
        match reply.to_vec() {
            Ok(bytes) if bytes.len() <= limit || reply.answers.is_empty() => return Some(bytes),
            Ok(_) => {
                reply.answers.pop();
                reply.metadata.truncation = true;
            }
            Err(e) => {
                warn!(error = %e, "dns: cannot encode reply");
                return None;
            }
        }
    }
}

/// Whether `reply` answers `query` (same id, response bit set).
fn answers(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= HEADER_LEN
        && query.len() >= 2
        && reply[..2] == query[..2]
        && reply[2] & 0x80 != 0
}

/// From a fresh socket (a new random port per query) connected to `upstream`, so stray or
/// spoofed datagrams from elsewhere are never read.
async fn exchange_udp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let len = socket.recv(&mut buf).await?;
        if answers(query, &buf[..len]) {
            buf.truncate(len);
            return Ok(buf);
        }
        debug!(%upstream, "dns: reply with another id ignored");
    }
}

async fn exchange_tcp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_frame(&mut stream, query).await?;
    loop {
        let reply = read_frame(&mut stream)
            .await?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        if answers(query, &reply) {
            return Ok(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io::{Read, Write};
    use std::sync::Mutex;

    use super::*;

    const CONTAINER: &str = "c1";
    const WEB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    /// What the fake upstream answers, with a TTL our own answers never have.
    const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const UPSTREAM_TTL: u32 = 42;

    #[derive(Default)]
    struct FakeNames {
        upstreams: Mutex<Vec<SocketAddr>>,
    }

    impl FakeNames {
        fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
            *self.upstreams.lock().unwrap() = upstreams;
        }
    }

    impl Names for FakeNames {
        fn lookup(&self, container: &str, name: &str) -> Option<Vec<IpAddr>> {
            if container != CONTAINER {
                return None;
            }
            match name {
                "web" | "web-alias" => Some(vec![WEB.into()]),
                "many" => Some(
                    (1..=200)
                        .map(|i| Ipv4Addr::new(10, 0, 1, i).into())
                        .collect(),
                ),
                _ => None,
            }
        }

        fn reverse(&self, container: &str, ip: IpAddr) -> Option<String> {
            (container == CONTAINER && ip == IpAddr::V4(WEB)).then(|| "web".to_owned())
        }

        fn upstreams(&self, _container: &str) -> Vec<SocketAddr> {
            self.upstreams.lock().unwrap().clone()
        }
    }

    /// A "daemon" and a "container" namespace pinned in a tempdir, unpinned even when the test
    /// fails.
    struct Pins {
        daemon: PathBuf,
        container: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl Drop for Pins {
        fn drop(&mut self) {
            let _ = crate::netns::remove(&self.container);
            let _ = crate::netns::remove(&self.daemon);
        }
    }

    /// Runs `test` on a runtime whose threads live in a throwaway daemon namespace (so the
    /// fake upstreams never touch the machine's network), given the container namespace's pin.
    fn in_namespaces<F, Fut>(test: F)
    where
        F: FnOnce(PathBuf) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins {
            daemon: dir.path().join("daemon"),
            container: dir.path().join("container"),
            _dir: dir,
        };
        crate::netns::create(&pins.daemon).unwrap();
        crate::netns::create(&pins.container).unwrap();
        let container = pins.container.clone();
        crate::netns::run_in(&pins.daemon, move || {
            // Threads inherit the namespace of the thread that makes them.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(test(container));
        })
        .expect("test body (its panic is printed above)");
    }

    async fn serve(names: &Arc<FakeNames>, netns: &Path) -> DnsListener {
        let names: Arc<dyn Names> = names.clone();
        DnsService::new(names)
            .serve_in(CONTAINER, netns)
            .await
            .unwrap()
    }

    fn query(name: &str, kind: RecordType) -> Message {
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        // Names on the wire are always absolute.
        let mut name = Name::from_ascii(name).unwrap();
        name.set_fqdn(true);
        message.add_query(Query::query(name, kind));
        message
    }

    fn encoded(message: &Message) -> Vec<u8> {
        message.to_vec().unwrap()
    }

    /// Runs blocking client code on a thread inside `netns`, off the runtime's threads.
    async fn inside<T: Send + 'static>(
        netns: &Path,
        client: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let netns = netns.to_path_buf();
        tokio::task::spawn_blocking(move || crate::netns::run_in(&netns, client))
            .await
            .unwrap()
            .unwrap()
    }

    /// Sends `packet` to 127.0.0.11:53 over UDP and waits `wait` for a reply.
    async fn udp_raw(netns: &Path, packet: Vec<u8>, wait: Duration) -> std::io::Result<Vec<u8>> {
        inside(netns, move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
            socket.set_read_timeout(Some(wait))?;
            socket.send_to(&packet, LISTEN)?;
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let len = socket.recv(&mut buf)?;
            buf.truncate(len);
            Ok(buf)
        })
        .await
    }

    async fn udp(netns: &Path, message: &Message) -> Message {
        let reply = udp_raw(netns, encoded(message), Duration::from_secs(8));
        Message::from_vec(&reply.await.unwrap()).unwrap()
    }

    /// Sends the framed `packets` on one connection and reads a reply to each.
    async fn tcp(netns: &Path, messages: &[Message]) -> Vec<Message> {
        let packets: Vec<Vec<u8>> = messages.iter().map(encoded).collect();
        let replies = inside(netns, move || -> std::io::Result<Vec<Vec<u8>>> {
            let mut stream = std::net::TcpStream::connect(LISTEN)?;
            stream.set_read_timeout(Some(Duration::from_secs(8)))?;
            let mut replies = Vec::new();
            for packet in packets {
                stream.write_all(&(packet.len() as u16).to_be_bytes())?;
                stream.write_all(&packet)?;
                let mut len = [0u8; 2];
                stream.read_exact(&mut len)?;
                let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut reply)?;
                replies.push(reply);
            }
            Ok(replies)
        });
        let replies = replies.await.unwrap();
        replies
            .iter()
            .map(|r| Message::from_vec(r).unwrap())
            .collect()
    }

    fn a_records(reply: &Message) -> Vec<Ipv4Addr> {
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    fn assert_reply_to(reply: &Message, query: &Message, code: ResponseCode) {
        assert_eq!(reply.metadata.id, query.metadata.id);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.response_code, code);
        assert_eq!(reply.queries, query.queries);
    }

    /// Our own answer, with Docker's flags and TTL.
    fn assert_local(reply: &Message, query: &Message) {
        assert_reply_to(reply, query, ResponseCode::NoError);
        assert!(reply.metadata.recursion_available);
        assert!(reply.metadata.recursion_desired);
        assert!(!reply.metadata.authoritative);
        assert!(reply.answers.iter().all(|r| r.ttl == TTL));
    }

    fn check_web(reply: &Message, query: &Message) {
        assert_local(reply, query);
        assert_eq!(a_records(reply), vec![WEB]);
    }

    fn check_no_aaaa(reply: &Message, query: &Message) {
        assert_local(reply, query);
        assert!(reply.answers.is_empty(), "{reply:?}");
    }

    fn check_ptr(reply: &Message, query: &Message) {
        assert_local(reply, query);
        let [record] = reply.answers.as_slice() else {
            panic!("one PTR expected: {reply:?}");
        };
        assert_eq!(
            &record.data,
            &RData::PTR(PTR(Name::from_ascii("web.").unwrap()))
        );
    }

    fn upstream_reply(query: &Message) -> Message {
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.authoritative = true;
        reply.queries = query.queries.clone();
        if let Some(q) = query.queries.first() {
            let rdata = RData::A(A(UPSTREAM_ANSWER));
            reply.add_answer(Record::from_rdata(q.name().clone(), UPSTREAM_TTL, rdata));
        }
        reply
    }

    /// A resolver in the daemon namespace answering every query with [`UPSTREAM_ANSWER`] over
    /// UDP (after a decoy reply with the wrong id) and TCP, on the same port.
    async fn fake_upstream() -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let mut reply = upstream_reply(&query);
                reply.metadata.id = query.metadata.id.wrapping_add(1);
                let _ = udp.send_to(&encoded(&reply), peer).await;
                reply.metadata.id = query.metadata.id;
                let _ = udp.send_to(&encoded(&reply), peer).await;
            }
        });
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                while let Ok(Some(packet)) = read_frame(&mut stream).await {
                    let query = Message::from_vec(&packet).unwrap();
                    let reply = encoded(&upstream_reply(&query));
                    if write_frame(&mut stream, &reply).await.is_err() {
                        break;
                    }
                }
            }
        });
        addr
    }

    fn check_forwarded(reply: &Message, query: &Message) {
        assert_reply_to(reply, query, ResponseCode::NoError);
        // Passed through as the upstream made it: its flags and TTL, not ours.
        assert!(reply.metadata.authoritative);
        assert!(!reply.metadata.recursion_available);
        assert_eq!(a_records(reply), vec![UPSTREAM_ANSWER]);
        assert_eq!(reply.answers[0].ttl, UPSTREAM_TTL);
    }

    #[test]
    fn answers_container_names_over_udp_and_tcp() {
        in_namespaces(|netns| async move {
            let names = Arc::new(FakeNames::default());
            let _listener = serve(&names, &netns).await;

            let a_web = query("web", RecordType::A);
            check_web(&udp(&netns, &a_web).await, &a_web);
            for name in ["WEB.", "web-alias."] {
                let q = query(name, RecordType::A);
                check_web(&udp(&netns, &q).await, &q);
            }
            let aaaa_web = query("web.", RecordType::AAAA);
            check_no_aaaa(&udp(&netns, &aaaa_web).await, &aaaa_web);
            let ptr = query("2.0.0.10.in-addr.arpa.", RecordType::PTR);
            check_ptr(&udp(&netns, &ptr).await, &ptr);

            let replies = tcp(&netns, &[a_web.clone(), aaaa_web.clone(), ptr.clone()]).await;
            check_web(&replies[0], &a_web);
            check_no_aaaa(&replies[1], &aaaa_web);
            check_ptr(&replies[2], &ptr);
        });
    }

    #[test]
    fn forwards_other_queries_to_the_first_upstream_that_answers() {
        in_namespaces(|netns| async move {
            // Nothing listens on `dead`: refused at once over UDP (ICMP) and TCP (RST).
            let dead = UdpSocket::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap();
            let names = Arc::new(FakeNames::default());
            names.set_upstreams(vec![dead, fake_upstream().await]);
            let _listener = serve(&names, &netns).await;

            let unknown = query("example.com.", RecordType::A);
            // A type we do not serve, for a name we know.
            let mx_web = query("web.", RecordType::MX);
            for q in [&unknown, &mx_web] {
                check_forwarded(&udp(&netns, q).await, q);
            }
            let replies = tcp(&netns, &[unknown.clone(), mx_web.clone()]).await;
            check_forwarded(&replies[0], &unknown);
            check_forwarded(&replies[1], &mx_web);
        });
    }

    #[test]
    fn servfail_when_no_upstream_answers() {
        in_namespaces(|netns| async move {
            let names = Arc::new(FakeNames::default());
            let _listener = serve(&names, &netns).await;
            let unknown = query("example.com.", RecordType::A);
            assert_reply_to(
                &udp(&netns, &unknown).await,
                &unknown,
                ResponseCode::ServFail,
            );
            let replies = tcp(&netns, std::slice::from_ref(&unknown)).await;
            assert_reply_to(&replies[0], &unknown, ResponseCode::ServFail);

            // Upstreams that take the query and never reply.
            let silent_udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let silent_tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            names.set_upstreams(vec![silent_udp.local_addr().unwrap()]);
            assert_reply_to(
                &udp(&netns, &unknown).await,
                &unknown,
                ResponseCode::ServFail,
            );
            names.set_upstreams(vec![silent_tcp.local_addr().unwrap()]);
            let replies = tcp(&netns, std::slice::from_ref(&unknown)).await;
            assert_reply_to(&replies[0], &unknown, ResponseCode::ServFail);
        });
    }

    #[test]
    fn garbage_does_not_stop_the_server() {
        in_namespaces(|netns| async move {
            let names = Arc::new(FakeNames::default());
            let _listener = serve(&names, &netns).await;
            let a_web = query("web", RecordType::A);
            let mut response = upstream_reply(&a_web);
            response.metadata.id = 7;
            for junk in [
                b"garbage".to_vec(),
                vec![0xff; 600],
                Vec::new(),
                encoded(&response),
            ] {
                let reply = udp_raw(&netns, junk, Duration::from_millis(300)).await;
                assert!(reply.is_err(), "no reply to junk: {reply:?}");
            }
            check_web(&udp(&netns, &a_web).await, &a_web);

            // TCP: junk in a frame closes the connection; a cut frame is dropped silently.
            for junk in [b"\x00\x07garbage".to_vec(), b"\x00\x40short".to_vec()] {
                let read = inside(&netns, move || -> std::io::Result<usize> {
                    let mut stream = std::net::TcpStream::connect(LISTEN)?;
                    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
                    stream.write_all(&junk)?;
                    stream.shutdown(std::net::Shutdown::Write)?;
                    stream.read(&mut [0u8; 64])
                });
                assert_eq!(read.await.unwrap(), 0, "closed without a reply");
            }
            check_web(&tcp(&netns, std::slice::from_ref(&a_web)).await[0], &a_web);
        });
    }

    /// Whether 127.0.0.11:53 can be bound (UDP and TCP) in `netns`.
    async fn port_free(netns: &Path) -> bool {
        inside(netns, || {
            std::net::UdpSocket::bind(LISTEN).is_ok() && std::net::TcpListener::bind(LISTEN).is_ok()
        })
        .await
    }

    #[test]
    fn stopping_frees_the_port() {
        in_namespaces(|netns| async move {
            let names = Arc::new(FakeNames::default());
            let listener = serve(&names, &netns).await;
            assert!(!port_free(&netns).await);
            let names_dyn: Arc<dyn Names> = names.clone();
            let again = DnsService::new(names_dyn).serve_in(CONTAINER, &netns).await;
            assert!(
                matches!(again, Err(NetworkError::Dns(_))),
                "second bind fails"
            );

            listener.close().await;
            assert!(port_free(&netns).await, "free once close returns");

            let listener = serve(&names, &netns).await;
            drop(listener);
            // Dropping only aborts; the runtime closes the sockets when it gets to the tasks.
            let mut freed = false;
            for _ in 0..100 {
                if port_free(&netns).await {
                    freed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(freed, "free soon after drop");
        });
    }

    #[test]
    fn busybox_nslookup_resolves_a_container_name() {
        in_namespaces(|netns| async move {
            let names = Arc::new(FakeNames::default());
            let _listener = serve(&names, &netns).await;
            let pin = netns.clone();
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new("nsenter")
                    .arg(format!("--net={}", pin.display()))
                    .args(["/bin/busybox", "nslookup", "web", "127.0.0.11"])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "nslookup: {stdout}{stderr}");
            assert!(stdout.contains("10.0.0.2"), "nslookup: {stdout}{stderr}");
        });
    }

    /// The resolver alone (no sockets): the edges of what we answer ourselves.
    fn handle(names: FakeNames, message: &Message, transport: Transport) -> Option<Message> {
        let resolver = Resolver {
            names: Arc::new(names),
            container: CONTAINER.to_owned(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let reply = runtime.block_on(resolver.handle(&encoded(message), transport))?;
        Some(Message::from_vec(&reply).unwrap())
    }

    #[test]
    fn long_answers_are_truncated_for_udp_only() {
        let many = query("many", RecordType::A);
        let reply = handle(FakeNames::default(), &many, Transport::Udp).unwrap();
        assert!(reply.metadata.truncation);
        assert!(!reply.answers.is_empty() && reply.answers.len() < 200);
        assert!(encoded(&reply).len() <= 512);

        let reply = handle(FakeNames::default(), &many, Transport::Tcp).unwrap();
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.answers.len(), 200);

        // A client announcing a larger UDP size gets everything, and an OPT record back.
        let mut edns_many = many.clone();
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        edns_many.set_edns(edns);
        let reply = handle(FakeNames::default(), &edns_many, Transport::Udp).unwrap();
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.answers.len(), 200);
        assert_eq!(reply.edns.map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
    }

    #[test]
    fn only_exact_questions_are_answered_locally() {
        // Without upstreams, anything not answered locally comes back as SERVFAIL.
        let mut chaos = query("web", RecordType::A);
        chaos.queries[0].set_query_class(DNSClass::CH);
        let partial_arpa = query("0.0.10.in-addr.arpa.", RecordType::PTR);
        let other_container = query("9.9.9.9.in-addr.arpa.", RecordType::PTR);
        let mut two = query("web", RecordType::A);
        two.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::AAAA,
        ));
        for q in [&chaos, &partial_arpa, &other_container, &two] {
            let reply = handle(FakeNames::default(), q, Transport::Udp).unwrap();
            assert_reply_to(&reply, q, ResponseCode::ServFail);
        }

        let mut no_question = query("web", RecordType::A);
        no_question.queries.clear();
        assert!(handle(FakeNames::default(), &no_question, Transport::Udp).is_none());

        let ip6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        let reply = handle(
            FakeNames::default(),
            &query(ip6, RecordType::PTR),
            Transport::Udp,
        );
        assert_eq!(
            reply.unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
    }
}
