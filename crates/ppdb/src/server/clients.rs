//! The connections a node serves, as CLIENT LIST, CLIENT INFO and CLIENT KILL see them.
//!
//! Each connection publishes a [`ClientRecord`] in the node's [`ClientRegistry`] while it is
//! open: what it is (id, addresses, name, library), what it last did, and how much buffer it
//! holds. The connection's own task owns everything else; another connection can only read
//! the record and ask the connection to close ([`ClientRecord::kill`]), which it notices while
//! waiting for its next request.

use super::resp::command::{ClientListFilter, ClientType, KillFilter, DEFAULT_USER};
use super::resp::ProtocolVersion;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::Notify;

/// What a connection says about itself and may change: its name, library, protocol and the
/// last command it ran.
#[derive(Debug)]
struct Identity {
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    resp: i64,
    /// The last command's full name (`client|list`), `NULL` before the first.
    command: String,
    no_evict: bool,
    /// The ACL user it is logged in as.
    user: String,
}

/// One open connection, as other connections see it.
#[derive(Debug)]
pub struct ClientRecord {
    /// CLIENT ID: unique and increasing on this node.
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// The address it connected to.
    pub laddr: SocketAddr,
    fd: i32,
    created: Instant,
    /// Milliseconds after `created` of the last request.
    active_ms: AtomicU64,
    identity: Mutex<Identity>,
    /// Commands queued since MULTI, -1 outside MULTI.
    multi: AtomicI64,
    query_bytes: AtomicU64,
    query_free_bytes: AtomicU64,
    output_bytes: AtomicU64,
    buffers_bytes: AtomicU64,
    /// Channels, patterns and shard channels subscribed to.
    subscriptions: Mutex<[usize; 3]>,
    killed: AtomicBool,
    kill_signal: Notify,
}

/// One rendered `key=value` list of CLIENT LIST, without its newline.
pub type ClientLine = String;

impl ClientRecord {
    /// A fresh connection's record.
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> ClientRecord {
        ClientRecord {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            active_ms: AtomicU64::new(0),
            identity: Mutex::new(Identity {
                name: None,
                lib_name: None,
                lib_ver: None,
                resp: ProtocolVersion::Resp2.number(),
                command: "NULL".to_owned(),
                no_evict: false,
                user: DEFAULT_USER.to_owned(),
            }),
            multi: AtomicI64::new(-1),
            query_bytes: AtomicU64::new(0),
            query_free_bytes: AtomicU64::new(0),
            output_bytes: AtomicU64::new(0),
            buffers_bytes: AtomicU64::new(0),
            subscriptions: Mutex::new([0; 3]),
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
        }
    }

    fn identity(&self) -> MutexGuard<'_, Identity> {
        self.identity.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the ACL user the connection is logged in as.
    pub fn set_user(&self, user: &str) {
        user.clone_into(&mut self.identity().user);
    }

    /// Records a request about to run: its command name (if known) and the time.
    pub fn note_request(&self, args: &[Bytes]) {
        let elapsed_ms = self.created.elapsed().as_millis();
        self.active_ms.store(u64::try_from(elapsed_ms).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(name) = super::resp::command::table::full_name(args) {
            self.identity().command = name;
        }
    }

    /// The connection's name (CLIENT GETNAME).
    pub fn name(&self) -> Option<Bytes> {
        self.identity().name.clone()
    }

    /// Sets or clears the connection's name.
    pub fn set_name(&self, name: Option<Bytes>) {
        self.identity().name = name;
    }

    /// CLIENT SETINFO: the client library's name or version.
    pub fn set_library(&self, attribute: &str, value: Bytes) {
        let mut identity = self.identity();
        let slot = if attribute == "lib-name" { &mut identity.lib_name } else { &mut identity.lib_ver };
        *slot = Some(value);
    }

    /// The protocol the connection speaks now.
    pub fn set_protocol(&self, version: ProtocolVersion) {
        self.identity().resp = version.number();
    }

    /// CLIENT NO-EVICT: shown as the `e` flag (PPDB never evicts clients either way).
    pub fn set_no_evict(&self, on: bool) {
        self.identity().no_evict = on;
    }

    /// Commands queued since MULTI (`None`: not in MULTI).
    pub fn set_multi(&self, queued: Option<usize>) {
        let multi = queued.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        self.multi.store(multi, Ordering::Relaxed);
    }

    /// The buffers the connection holds: bytes received but not yet run (and the room left
    /// for more), and replies not yet sent.
    pub fn set_buffers(
        &self,
        query_bytes: usize,
        query_capacity: usize,
        output_bytes: usize,
        output_capacity: usize,
    ) {
        let store = |cell: &AtomicU64, bytes: usize| cell.store(bytes as u64, Ordering::Relaxed);
        store(&self.query_bytes, query_bytes);
        store(&self.query_free_bytes, query_capacity.saturating_sub(query_bytes));
        store(&self.output_bytes, output_bytes);
        store(&self.buffers_bytes, query_capacity.saturating_add(output_capacity));
    }

    /// The channels, patterns and shard channels the connection subscribes to (`sub`, `psub`,
    /// `ssub`); a subscribed connection is of the pub/sub type, flagged `P`.
    pub fn set_subscriptions(&self, counts: [usize; 3]) {
        *self.subscriptions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = counts;
    }

    fn subscription_counts(&self) -> [usize; 3] {
        *self.subscriptions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Redis's class of the connection: pub/sub while subscribed, normal otherwise.
    fn client_type(&self) -> ClientType {
        if self.subscription_counts().iter().any(|&n| n > 0) {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }

    /// Asks the connection to close (CLIENT KILL).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.kill_signal.notify_one();
    }

    /// Whether CLIENT KILL closed the connection.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Completes once CLIENT KILL has closed the connection.
    pub async fn killed(&self) {
        if !self.is_killed() {
            // A kill between the check and this wait leaves a permit, so it is not missed.
            self.kill_signal.notified().await;
        }
    }

    /// The connection's CLIENT LIST line, with Redis 7.2's fields in Redis's order. Fields of
    /// features PPDB lacks (tracking) read as on a Redis client that does
    /// not use them; buffer sizes are those of the connection's last read or write.
    pub fn line(&self) -> ClientLine {
        let identity = self.identity();
        let text = |value: &Option<Bytes>| {
            String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned()
        };
        let multi = self.multi.load(Ordering::Relaxed);
        let mut flags = String::new();
        let [sub, psub, ssub] = self.subscription_counts();
        if sub + psub + ssub > 0 {
            flags.push('P');
        }
        if multi >= 0 {
            flags.push('x');
        }
        if identity.no_evict {
            flags.push('e');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let age_s = self.created.elapsed().as_secs();
        let idle_s = age_s.saturating_sub(self.active_ms.load(Ordering::Relaxed) / 1000);
        let load = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        let mut line = String::with_capacity(320);
        let _ = write!(
            line,
            "id={} addr={} laddr={} fd={} name={} age={age_s} idle={idle_s} flags={flags} db=0 sub={sub} \
             psub={psub} ssub={ssub} multi={multi} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 \
             obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir=-1 resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            text(&identity.name),
            load(&self.query_bytes),
            load(&self.query_free_bytes),
            load(&self.query_bytes) + load(&self.query_free_bytes),
            load(&self.output_bytes),
            load(&self.buffers_bytes),
            identity.command,
            identity.user,
            identity.resp,
            text(&identity.lib_name),
            text(&identity.lib_ver),
        );
        line
    }

    /// Whether CLIENT KILL's filters (all of them) select this connection.
    fn matches(&self, filter: &KillFilter) -> bool {
        let addr_is = |wanted: &Option<Bytes>, addr: SocketAddr| {
            wanted.as_ref().is_none_or(|wanted| wanted.as_ref() == addr.to_string().as_bytes())
        };
        filter.id.is_none_or(|id| id == self.id)
            && filter.client_type.is_none_or(|kind| kind == self.client_type())
            && addr_is(&filter.addr, self.addr)
            && addr_is(&filter.laddr, self.laddr)
    }
}

/// The open connections of a node, by id.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientRecord>>>,
}

/// What CLIENT KILL did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Killed {
    /// Connections closed, the caller included.
    pub count: usize,
    /// Whether the caller is among them (it closes after its reply).
    pub caller: bool,
}

impl ClientRegistry {
    fn clients(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientRecord>>> {
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists `record` until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, record: Arc<ClientRecord>) -> Registration {
        let id = record.id;
        self.clients().insert(id, record);
        Registration { registry: Arc::clone(self), id }
    }

    /// CLIENT LIST's text: one line per selected connection, in id order, each ending in `\n`.
    pub fn list(&self, filter: &ClientListFilter) -> String {
        let selected: Vec<Arc<ClientRecord>> = {
            let clients = self.clients();
            match filter {
                ClientListFilter::All => clients.values().cloned().collect(),
                ClientListFilter::Type(kind) => {
                    clients.values().filter(|record| record.client_type() == *kind).cloned().collect()
                }
                ClientListFilter::Ids(ids) => ids
                    .iter()
                    .filter_map(|&id| u64::try_from(id).ok().and_then(|id| clients.get(&id)).cloned())
                    .collect(),
            }
        };
        selected.iter().fold(String::new(), |mut text, record| {
            text.push_str(&record.line());
            text.push('\n');
            text
        })
    }

    /// Closes the connections `filter` selects; the caller (`caller_id`) is spared when the
    /// filter says SKIPME, and otherwise only marked, to close after its reply.
    pub fn kill(&self, filter: &KillFilter, caller_id: u64) -> Killed {
        let mut killed = Killed { count: 0, caller: false };
        for record in self.clients().values().filter(|record| record.matches(filter)) {
            if record.id == caller_id {
                if filter.skip_me {
                    continue;
                }
                killed.caller = true;
            } else {
                record.kill();
            }
            killed.count += 1;
        }
        killed
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.clients().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.clients().is_empty()
    }
}

/// A connection's place in the registry; dropping it (even in a panic) removes the entry.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<ClientRegistry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.clients().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, port: u16) -> Arc<ClientRecord> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Arc::new(ClientRecord::new(id, addr, "127.0.0.1:6379".parse().unwrap(), 9))
    }

    #[test]
    fn a_line_has_redis_fields_in_redis_order() {
        let client = record(7, 5000);
        client.set_name(Some(Bytes::from_static(b"worker")));
        client.set_library("lib-name", Bytes::from_static(b"redis-py"));
        client.note_request(&[Bytes::from_static(b"CLIENT"), Bytes::from_static(b"LIST")]);
        let line = client.line();
        let keys: Vec<&str> = line.split(' ').map(|field| field.split('=').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp",
                "lib-name",
                "lib-ver"
            ]
        );
        for field in ["id=7", "addr=127.0.0.1:5000", "laddr=127.0.0.1:6379", "fd=9", "name=worker", "flags=N"]
        {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(line.contains("multi=-1") && line.contains("cmd=client|list"), "{line}");
        assert!(line.ends_with("resp=2 lib-name=redis-py lib-ver="), "{line}");
        client.set_multi(Some(3));
        client.set_no_evict(true);
        assert!(client.line().contains("flags=xe") && client.line().contains("multi=3"));
    }

    #[test]
    fn kill_selects_by_every_filter_and_spares_the_caller_unless_told() {
        let registry = Arc::new(ClientRegistry::default());
        let _a = registry.register(record(1, 5001));
        let _b = registry.register(record(2, 5002));
        let all = KillFilter { skip_me: true, ..KillFilter::default() };
        let by_addr = KillFilter { addr: Some(Bytes::from_static(b"127.0.0.1:5002")), ..all.clone() };
        assert_eq!(registry.kill(&by_addr, 1), Killed { count: 1, caller: false });
        assert_eq!(
            registry
                .kill(&KillFilter { id: Some(2), laddr: Some("1.1.1.1:1".into()), ..all.clone() }, 1)
                .count,
            0
        );
        assert_eq!(registry.kill(&all, 1), Killed { count: 1, caller: false }, "only 2; 1 is spared");
        assert_eq!(
            registry.kill(&KillFilter { skip_me: false, ..all.clone() }, 1),
            Killed { count: 2, caller: true }
        );
        let pubsub = KillFilter { client_type: Some(ClientType::PubSub), ..all };
        assert_eq!(registry.kill(&pubsub, 1).count, 0);
        assert!(registry.list(&ClientListFilter::All).lines().count() == 2);
        drop(_b);
        assert_eq!(registry.list(&ClientListFilter::Ids(vec![2, 1, -3])).lines().count(), 1);
    }

    #[test]
    fn a_subscribed_connection_is_of_the_pubsub_type_with_its_counts() {
        let registry = Arc::new(ClientRegistry::default());
        let subscriber = record(1, 5004);
        let _subscriber = registry.register(Arc::clone(&subscriber));
        let _other = registry.register(record(2, 5005));
        subscriber.set_subscriptions([2, 1, 0]);
        assert!(subscriber.line().contains("flags=P db=0 sub=2 psub=1 ssub=0"), "{}", subscriber.line());
        let listed = |kind| registry.list(&ClientListFilter::Type(kind));
        assert!(
            listed(ClientType::PubSub).starts_with("id=1 ")
                && listed(ClientType::PubSub).lines().count() == 1
        );
        assert!(
            listed(ClientType::Normal).starts_with("id=2 ")
                && listed(ClientType::Normal).lines().count() == 1
        );
        let pubsub = KillFilter { client_type: Some(ClientType::PubSub), ..KillFilter::default() };
        assert_eq!(registry.kill(&pubsub, 2).count, 1);
        assert!(subscriber.is_killed());
        subscriber.set_subscriptions([0; 3]);
        assert!(subscriber.line().contains("flags=N db=0 sub=0 psub=0 ssub=0"), "unsubscribed: normal again");
    }

    #[tokio::test]
    async fn a_kill_before_the_wait_is_not_missed() {
        let client = record(1, 5003);
        client.kill();
        tokio::time::timeout(std::time::Duration::from_secs(5), client.killed()).await.expect("killed");
    }
}
