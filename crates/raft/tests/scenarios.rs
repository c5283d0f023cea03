//! Data-driven scenario tests of the Raft core, in the style of etcd's interaction tests.
//!
//! Every `crates/raft/testdata/*.txt` file is one scenario that reads as a specification:
//! commands drive a small group of [`RawNode`]s by hand, and the exact messages and state they
//! produce are written below each command.
//!
//! # File format
//!
//! - Lines starting with `#` outside a block are comments; blank lines separate blocks.
//! - A block is one or more command lines, a line holding exactly `----`, then the expected
//!   output, which ends at the next blank line (or the end of the file). Output never contains
//!   blank lines; a command with nothing to say prints `ok`.
//! - Inside a block, command lines starting with `#` are comments.
//! - A command is a name, positional arguments and `key=value` options, separated by spaces:
//!   `add-nodes 3 pre-vote=false`, `partition (1,2)|(3)`, `deliver-msgs 2 type=Append`.
//!
//! Run with `cargo test -p ppdb-raft --test scenarios`. A mismatch fails with `file:line`, the
//! command, and a line diff of expected (`-`) against actual (`+`) output.
//! `PPDB_REWRITE=1 cargo test -p ppdb-raft --test scenarios` rewrites the expected outputs in
//! place; every changed output must then be reviewed by hand for protocol correctness.
//! `PPDB_SCENARIO=<substring>` runs only the files whose name contains it. `PPDB_PENDING=1`
//! runs `testdata/pending/*.txt` instead: scenarios of what Raft requires where the core is
//! known to fall short; they fail until the core is fixed, and then move up to `testdata/`.
//!
//! # Commands
//!
//! | command | effect |
//! |---|---|
//! | `add-nodes N [voters=1,2,3] [pre-vote=B] [check-quorum=B] [election-ticks=T] [heartbeat-ticks=T] [inflight=K] [max-entries=K] [max-uncommitted=K]` | N new nodes (next free ids), bootstrapped with the given voters (default: the new ids) |
//! | `add-spare ID [options as above]` | a node with no state at all (`RecoveredState::default()`), to join later |
//! | `campaign ID` | start an election now (a pre-vote round first when pre-vote is on) |
//! | `tick ID [N]`, `tick-heartbeat ID`, `tick-election ID` | advance logical time; `tick-election` ticks a leader for one election timeout and anyone else until it does something (at most two timeouts, the randomized range) |
//! | `propose ID DATA...` | one command (or a batch of several) |
//! | `propose-conf-change ID add-learner\|add-voter\|remove NODE` | a membership change |
//! | `read-index ID CTX`, `transfer-leader ID TO` | a linearizable read; a leader transfer |
//! | `process-ready [IDS...]` | collect a Ready, print it, persist it, queue its messages, apply, advance |
//! | `deliver-msgs [IDS...] [drop=IDS] [type=KIND] [from=ID]` | deliver queued messages to IDS (all), or drop those to `drop`; `type`/`from` select which |
//! | `stabilize [IDS...]` | process-ready and deliver among IDS (all) until nothing moves |
//! | `partition (1,2)\|(3)`, `heal` | only nodes of one group talk; a node in no group talks to nobody |
//! | `crash ID`, `restart ID` | lose everything but what was persisted; restart from it |
//! | `snapshot-and-compact ID` | snapshot the state machine at the applied index and compact the log |
//! | `silent CMD ...` | run CMD and discard its output (for set-up steps shown elsewhere) |
//! | `status ID`, `log ID` | the node's state and its leader's view of followers; its log and state machine |
//!
//! # Output
//!
//! `i/t` is always *index/term*. Messages read `FROM->TO Kind term=T fields...`; a Ready is
//! printed as `> ID handling Ready` followed by what it holds; delivered messages as
//! `> ID receiving messages` and the messages. `INFO` lines report a change of a node's role,
//! term, known leader or membership, as the command caused it. Roles are those of
//! [`PeerRole`], except that a candidate that has not bumped its term (the pre-vote phase) is
//! shown as `pre-candidate`.

use ppdb_raft::sim::rng::SimRng;
use ppdb_raft::tracker::ProgressState;
use ppdb_raft::{
    ConfChange, ConfChangeKind, Config, Entry, EntryPayload, HardState, Membership, Message, MessageBody,
    NodeId, PeerRole, RawNode, Ready, RecoveredState, Snapshot, Term,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// The runner: parse, execute, compare or rewrite.
// ---------------------------------------------------------------------------------------------

/// One `commands / ---- / output` block, with the comments and blank lines before it.
struct Block {
    preamble: Vec<String>,
    /// Command lines with their 1-based line numbers.
    commands: Vec<(usize, String)>,
    expected: Vec<String>,
}

/// A parsed scenario file.
struct Script {
    blocks: Vec<Block>,
    /// Comments and blank lines after the last block.
    trailer: Vec<String>,
}

fn parse_script(file: &str, text: &str) -> Result<Script, String> {
    #[derive(PartialEq)]
    enum At {
        Outside,
        Commands,
        Output,
    }
    let (mut blocks, mut preamble, mut commands, mut expected) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut at = At::Outside;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let blank = line.trim().is_empty();
        match at {
            At::Outside if blank || line.starts_with('#') => preamble.push(line.to_string()),
            At::Outside if line == "----" => {
                return Err(format!("{file}:{n}: `----` without a command above it"))
            }
            At::Outside => {
                commands.push((n, line.to_string()));
                at = At::Commands;
            }
            At::Commands if line == "----" => at = At::Output,
            At::Commands if blank => {
                return Err(format!("{file}:{n}: blank line inside a command block (missing `----`?)"))
            }
            At::Commands => commands.push((n, line.to_string())),
            At::Output if blank => {
                let block = Block {
                    preamble: std::mem::take(&mut preamble),
                    commands: std::mem::take(&mut commands),
                    expected: std::mem::take(&mut expected),
                };
                blocks.push(block);
                preamble.push(line.to_string());
                at = At::Outside;
            }
            At::Output => expected.push(line.to_string()),
        }
    }
    match at {
        At::Commands => {
            let n = commands.first().map_or(0, |c: &(usize, String)| c.0);
            return Err(format!("{file}:{n}: command block without `----`"));
        }
        At::Output => blocks.push(Block { preamble: Vec::new(), commands, expected }),
        At::Outside => {}
    }
    // A block that ended the file took no preamble of its own: give it the pending one.
    if at == At::Output {
        if let Some(last) = blocks.last_mut() {
            last.preamble = std::mem::take(&mut preamble);
        }
    }
    Ok(Script { blocks, trailer: preamble })
}

fn render_script(script: &Script, outputs: &[Vec<String>]) -> String {
    let mut text = String::new();
    for (block, output) in script.blocks.iter().zip(outputs) {
        for line in &block.preamble {
            text.push_str(line);
            text.push('\n');
        }
        for (_, line) in &block.commands {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("----\n");
        for line in output {
            text.push_str(line);
            text.push('\n');
        }
    }
    for line in &script.trailer {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A line diff (longest common subsequence): `  ` same, `- ` expected only, `+ ` actual only.
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "  {}", expected[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", expected[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", actual[j]);
            j += 1;
        }
    }
    out
}

/// Runs one scenario file; returns the failures (empty when it passes).
fn run_file(path: &Path, rewrite: bool) -> Vec<String> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return vec![format!("{file}: cannot read: {e}")],
    };
    let script = match parse_script(&file, &text) {
        Ok(script) => script,
        Err(e) => return vec![e],
    };
    let mut env = Env::default();
    let mut failures = Vec::new();
    let mut outputs = Vec::new();
    for block in &script.blocks {
        let mut out = String::new();
        for (n, line) in &block.commands {
            if line.starts_with('#') {
                continue;
            }
            let result = Cmd::parse(line).and_then(|cmd| env.exec(&cmd, &mut out));
            if let Err(e) = result {
                failures.push(format!("{file}:{n}: `{line}`: {e}"));
                return failures;
            }
        }
        let mut actual: Vec<String> = out.lines().map(|l| l.trim_end().to_string()).collect();
        if actual.is_empty() {
            actual.push("ok".to_string());
        }
        if let Some(pos) = actual.iter().position(|l| l.is_empty()) {
            let n = block.commands[0].0;
            failures.push(format!("{file}:{n}: output line {} is blank; the format forbids it", pos + 1));
            return failures;
        }
        if actual != block.expected && !rewrite {
            let (n, first) = &block.commands[0];
            failures.push(format!(
                "{file}:{n}: output of `{first}` differs (- expected, + actual):\n{}",
                diff(&block.expected, &actual)
            ));
        }
        outputs.push(actual);
    }
    if rewrite {
        let rendered = render_script(&script, &outputs);
        if rendered != text {
            if let Err(e) = std::fs::write(path, rendered) {
                failures.push(format!("{file}: cannot rewrite: {e}"));
            }
        }
    }
    failures
}

#[test]
fn scenarios() {
    // `PPDB_PENDING=1` runs instead the scenarios of testdata/pending/: the behaviour Raft
    // requires where the core is known to fall short (expected to fail until it is fixed).
    let pending = std::env::var_os("PPDB_PENDING").is_some_and(|v| v != "0");
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(if pending { "testdata/pending" } else { "testdata" });
    let rewrite = std::env::var_os("PPDB_REWRITE").is_some_and(|v| v != "0");
    let only = std::env::var("PPDB_SCENARIO").ok();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "txt"))
        .filter(|p| only.as_ref().is_none_or(|s| p.to_string_lossy().contains(s.as_str())))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let failures: Vec<String> = files.iter().flat_map(|f| run_file(f, rewrite)).collect();
    assert!(failures.is_empty(), "{} scenario failure(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Commands and their arguments.
// ---------------------------------------------------------------------------------------------

/// A parsed command line: `name pos... key=value...`.
struct Cmd {
    name: String,
    pos: Vec<String>,
    opts: BTreeMap<String, String>,
}

impl Cmd {
    fn parse(line: &str) -> Result<Cmd, String> {
        let mut words = line.split_whitespace();
        let name = words.next().ok_or("empty command")?.to_string();
        let (mut pos, mut opts) = (Vec::new(), BTreeMap::new());
        for word in words {
            match word.split_once('=') {
                Some((k, v)) => {
                    if opts.insert(k.to_string(), v.to_string()).is_some() {
                        return Err(format!("option `{k}` given twice"));
                    }
                }
                None => pos.push(word.to_string()),
            }
        }
        Ok(Cmd { name, pos, opts })
    }

    /// Refuses options this command does not know, so a typo is not silently ignored.
    fn allow(&self, keys: &[&str], positional_max: usize) -> Result<(), String> {
        if let Some(k) = self.opts.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!("unknown option `{k}` (allowed: {keys:?})"));
        }
        if self.pos.len() > positional_max {
            return Err(format!("too many arguments (at most {positional_max})"));
        }
        Ok(())
    }

    fn arg(&self, i: usize, what: &str) -> Result<&str, String> {
        self.pos.get(i).map(String::as_str).ok_or_else(|| format!("missing argument {}: {what}", i + 1))
    }

    fn node(&self, i: usize) -> Result<NodeId, String> {
        parse_u64(self.arg(i, "node id")?).map(NodeId)
    }

    fn nodes(&self) -> Result<Vec<NodeId>, String> {
        self.pos.iter().map(|p| parse_u64(p).map(NodeId)).collect()
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, String> {
        self.opts.get(key).map(|v| parse_u64(v)).transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.opts
            .get(key)
            .map(|v| match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("`{key}={v}`: expected true or false")),
            })
            .transpose()
    }

    fn opt_nodes(&self, key: &str) -> Result<Option<Vec<NodeId>>, String> {
        self.opts.get(key).map(|v| parse_node_list(v)).transpose()
    }
}

fn parse_u64(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("`{s}` is not a number"))
}

/// `1,2,3` or `(1,2,3)`; `()` is the empty list.
fn parse_node_list(s: &str) -> Result<Vec<NodeId>, String> {
    let inner = s.trim_start_matches('(').trim_end_matches(')');
    inner.split(',').filter(|p| !p.is_empty()).map(|p| parse_u64(p.trim()).map(NodeId)).collect()
}

// ---------------------------------------------------------------------------------------------
// The environment: nodes, their durable stores and state machines, and the network.
// ---------------------------------------------------------------------------------------------

/// What a node persisted by the Ready contract: all that survives a crash.
#[derive(Default)]
struct Store {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Store {
    fn persist_snapshot(&mut self, snapshot: &Snapshot) {
        let index = snapshot.meta.index;
        self.entries.retain(|e| e.index > index);
        if self.entries.first().is_some_and(|e| e.index != index.next()) {
            self.entries.clear();
        }
        self.snapshot = Some(snapshot.clone());
    }

    fn persist_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        self.entries.retain(|e| e.index < first.index);
        self.entries.extend_from_slice(entries);
    }

    fn recovered(&self) -> RecoveredState {
        RecoveredState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// What the INFO lines report on: printed whenever it changes.
#[derive(Clone, PartialEq, Default)]
struct Observed {
    role: &'static str,
    term: Term,
    leader: Option<NodeId>,
    membership: Membership,
}

struct Node {
    cfg: Config,
    /// `None` while crashed.
    raw: Option<RawNode>,
    store: Store,
    /// The state machine: the commands applied, in order.
    applied: Vec<String>,
    restarts: u64,
    seen: Observed,
}

impl Node {
    fn new(cfg: Config, state: RecoveredState) -> Result<Node, String> {
        let store = Store {
            hard_state: state.hard_state,
            snapshot: state.snapshot.clone(),
            entries: state.entries.clone(),
        };
        let rng = Box::new(SimRng::new(cfg.id.0));
        let raw = RawNode::new(cfg.clone(), state, rng).map_err(|e| e.to_string())?;
        let mut node =
            Node { cfg, raw: Some(raw), store, applied: Vec::new(), restarts: 0, seen: Observed::default() };
        node.seen = node.observe().unwrap_or_default();
        Ok(node)
    }

    fn raw(&mut self) -> Result<&mut RawNode, String> {
        let id = self.cfg.id;
        self.raw.as_mut().ok_or_else(|| format!("node {id} is down"))
    }

    fn observe(&self) -> Option<Observed> {
        let raw = self.raw.as_ref()?;
        let role = match raw.role() {
            PeerRole::Follower => "follower",
            PeerRole::Leader => "leader",
            // A candidate that did not bump its term is in the pre-vote phase.
            PeerRole::Candidate if raw.term() == self.seen.term && self.seen.role != "candidate" => {
                "pre-candidate"
            }
            PeerRole::Candidate => "candidate",
        };
        Some(Observed { role, term: raw.term(), leader: raw.leader(), membership: raw.membership().clone() })
    }

    /// Prints what changed since the last observation.
    fn report_changes(&mut self, out: &mut String, indent: &str) {
        let Some(now) = self.observe() else { return };
        let id = self.cfg.id;
        if (now.role, now.term, now.leader) != (self.seen.role, self.seen.term, self.seen.leader) {
            let _ = writeln!(
                out,
                "{indent}INFO {id} is {} term={} leader={}",
                now.role,
                now.term,
                now.leader.map_or("none".to_string(), |l| l.to_string())
            );
        }
        if now.membership != self.seen.membership {
            let _ = writeln!(out, "{indent}INFO {id} membership {}", fmt_membership(&now.membership));
        }
        self.seen = now;
    }

    fn snapshot_data(&self) -> Vec<u8> {
        self.applied.join("\n").into_bytes()
    }

    fn load_snapshot(&mut self, snapshot: &Snapshot) {
        let text = String::from_utf8_lossy(&snapshot.data).into_owned();
        self.applied = text.split('\n').filter(|s| !s.is_empty()).map(str::to_string).collect();
    }
}

#[derive(Default)]
struct Env {
    nodes: BTreeMap<NodeId, Node>,
    /// Messages sent and not yet delivered, per recipient, in sending order.
    mailbox: BTreeMap<NodeId, VecDeque<Message>>,
    /// Partition groups; `None` when the network is whole.
    groups: Option<Vec<BTreeSet<NodeId>>>,
}

/// Which queued messages a delivery takes.
struct Selection {
    to: Option<BTreeSet<NodeId>>,
    drop: BTreeSet<NodeId>,
    kind: Option<String>,
    from: Option<NodeId>,
}

impl Selection {
    fn all() -> Selection {
        Selection { to: None, drop: BTreeSet::new(), kind: None, from: None }
    }

    fn only(ids: &BTreeSet<NodeId>) -> Selection {
        Selection { to: Some(ids.clone()), ..Selection::all() }
    }

    fn takes(&self, m: &Message) -> bool {
        let to_ok = self.drop.contains(&m.to) || self.to.as_ref().is_none_or(|to| to.contains(&m.to));
        to_ok && self.kind.as_ref().is_none_or(|k| *k == msg_kind(m)) && self.from.is_none_or(|f| f == m.from)
    }
}

impl Env {
    fn node(&mut self, id: NodeId) -> Result<&mut Node, String> {
        self.nodes.get_mut(&id).ok_or_else(|| format!("no node {id}"))
    }

    fn exec(&mut self, cmd: &Cmd, out: &mut String) -> Result<(), String> {
        if cmd.name == "silent" {
            // `silent CMD ...`: run CMD and discard its output (set-up steps).
            let rest = Cmd {
                name: cmd.pos.first().ok_or("silent what?")?.clone(),
                pos: cmd.pos[1..].to_vec(),
                opts: cmd.opts.clone(),
            };
            return self.exec(&rest, &mut String::new());
        }
        const CONFIG_KEYS: [&str; 7] = [
            "pre-vote",
            "check-quorum",
            "election-ticks",
            "heartbeat-ticks",
            "inflight",
            "max-entries",
            "max-uncommitted",
        ];
        match cmd.name.as_str() {
            "add-nodes" => {
                let mut keys = CONFIG_KEYS.to_vec();
                keys.push("voters");
                cmd.allow(&keys, 1)?;
                let count = parse_u64(cmd.arg(0, "number of nodes")?)?;
                let first = self.nodes.keys().last().map_or(1, |id| id.0 + 1);
                let ids: Vec<NodeId> = (first..first + count).map(NodeId).collect();
                let voters = cmd.opt_nodes("voters")?.unwrap_or_else(|| ids.clone());
                for &id in &ids {
                    self.add_node(cmd, id, RecoveredState::bootstrap(voters.iter().copied()), out)?;
                }
            }
            "add-spare" => {
                cmd.allow(&CONFIG_KEYS, 1)?;
                let id = cmd.node(0)?;
                self.add_node(cmd, id, RecoveredState::default(), out)?;
            }
            "campaign" => {
                cmd.allow(&[], 1)?;
                self.on_node(cmd, |raw| raw.campaign(), out)?;
            }
            "tick" => {
                cmd.allow(&[], 2)?;
                let n = cmd.pos.get(1).map_or(Ok(1), |n| parse_u64(n))?;
                self.tick(cmd.node(0)?, n, false, out)?;
            }
            "tick-heartbeat" => {
                cmd.allow(&[], 1)?;
                let id = cmd.node(0)?;
                let n = u64::from(self.node(id)?.cfg.heartbeat_interval_ticks);
                self.tick(id, n, false, out)?;
            }
            "tick-election" => {
                cmd.allow(&[], 1)?;
                let id = cmd.node(0)?;
                let node = self.node(id)?;
                let timeout = u64::from(node.cfg.election_timeout_ticks);
                if node.raw()?.role() == PeerRole::Leader {
                    self.tick(id, timeout, false, out)?;
                } else {
                    self.tick(id, 2 * timeout, true, out)?;
                }
            }
            "propose" => {
                cmd.allow(&[], usize::MAX)?;
                let id = cmd.node(0)?;
                let data: Vec<Vec<u8>> = cmd.pos[1..].iter().map(|d| d.as_bytes().to_vec()).collect();
                let node = self.node(id)?;
                let result = match data.len() {
                    0 => return Err("nothing to propose".into()),
                    1 => node.raw()?.propose(data[0].clone()),
                    _ => node.raw()?.propose_batch(data),
                };
                print_result(out, result.map(|i| format!("index={i}")));
                node.report_changes(out, "");
            }
            "propose-conf-change" => {
                cmd.allow(&[], 3)?;
                let id = cmd.node(0)?;
                let kind = match cmd.arg(1, "add-learner|add-voter|remove")? {
                    "add-learner" => ConfChangeKind::AddLearner,
                    "add-voter" => ConfChangeKind::AddVoter,
                    "remove" => ConfChangeKind::Remove,
                    other => return Err(format!("unknown change `{other}`")),
                };
                let change = ConfChange { kind, node: cmd.node(2)? };
                let node = self.node(id)?;
                let result = node.raw()?.propose_conf_change(change);
                print_result(out, result.map(|i| format!("index={i}")));
                node.report_changes(out, "");
            }
            "read-index" => {
                cmd.allow(&[], 2)?;
                let ctx = parse_u64(cmd.arg(1, "request id")?)?;
                let node = self.node(cmd.node(0)?)?;
                let result = node.raw()?.read_index(ctx);
                print_result(out, result.map(|()| String::new()));
                node.report_changes(out, "");
            }
            "transfer-leader" => {
                cmd.allow(&[], 2)?;
                let to = cmd.node(1)?;
                self.on_node(cmd, |raw| raw.transfer_leader(to), out)?;
            }
            "process-ready" => {
                cmd.allow(&[], usize::MAX)?;
                for id in self.ids_or_all(cmd)? {
                    if !self.process_ready(id, out)? {
                        let _ = writeln!(out, "> {id} has no Ready");
                    }
                }
            }
            "deliver-msgs" => {
                cmd.allow(&["drop", "type", "from"], usize::MAX)?;
                let to: BTreeSet<NodeId> = cmd.nodes()?.into_iter().collect();
                let drop: BTreeSet<NodeId> = cmd.opt_nodes("drop")?.unwrap_or_default().into_iter().collect();
                // `drop=` alone drops only; with neither, everything is delivered.
                let to = if to.is_empty() && drop.is_empty() { None } else { Some(to) };
                let kind = cmd.opts.get("type").cloned();
                let from = cmd.opt_u64("from")?.map(NodeId);
                if !self.deliver(&Selection { to, drop, kind, from }, out)? {
                    let _ = writeln!(out, "no messages");
                }
            }
            "stabilize" => {
                cmd.allow(&[], usize::MAX)?;
                let ids: BTreeSet<NodeId> = self.ids_or_all(cmd)?.into_iter().collect();
                self.stabilize(&ids, out)?;
            }
            "partition" => {
                cmd.allow(&[], 1)?;
                let groups = cmd.arg(0, "groups such as (1,2)|(3)")?;
                let groups = groups
                    .split('|')
                    .map(|g| parse_node_list(g).map(|ids| ids.into_iter().collect()))
                    .collect::<Result<Vec<BTreeSet<NodeId>>, String>>()?;
                self.groups = Some(groups);
            }
            "heal" => {
                cmd.allow(&[], 0)?;
                self.groups = None;
            }
            "crash" => {
                cmd.allow(&[], 1)?;
                let node = self.node(cmd.node(0)?)?;
                node.raw()?;
                node.raw = None;
                node.applied.clear();
            }
            "restart" => {
                cmd.allow(&[], 1)?;
                self.restart(cmd.node(0)?, out)?;
            }
            "snapshot-and-compact" => {
                cmd.allow(&[], 1)?;
                self.snapshot_and_compact(cmd.node(0)?, out)?;
            }
            "status" => {
                cmd.allow(&[], usize::MAX)?;
                for id in self.ids_or_all(cmd)? {
                    self.print_status(id, out)?;
                }
            }
            "log" => {
                cmd.allow(&[], usize::MAX)?;
                for id in self.ids_or_all(cmd)? {
                    self.print_log(id, out)?;
                }
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        Ok(())
    }

    fn ids_or_all(&self, cmd: &Cmd) -> Result<Vec<NodeId>, String> {
        let ids = cmd.nodes()?;
        Ok(if ids.is_empty() { self.nodes.keys().copied().collect() } else { ids })
    }

    /// Runs `f` on the node named by the first argument, then reports what changed.
    fn on_node(&mut self, cmd: &Cmd, f: impl FnOnce(&mut RawNode), out: &mut String) -> Result<(), String> {
        let node = self.node(cmd.node(0)?)?;
        f(node.raw()?);
        node.report_changes(out, "");
        Ok(())
    }

    fn add_node(
        &mut self,
        cmd: &Cmd,
        id: NodeId,
        state: RecoveredState,
        out: &mut String,
    ) -> Result<(), String> {
        if self.nodes.contains_key(&id) {
            return Err(format!("node {id} exists"));
        }
        let mut cfg = Config::new(id);
        let as_u32 = |v: u64| u32::try_from(v).map_err(|_| format!("{v} is too large"));
        if let Some(v) = cmd.opt_bool("pre-vote")? {
            cfg.pre_vote = v;
        }
        if let Some(v) = cmd.opt_bool("check-quorum")? {
            cfg.check_quorum = v;
        }
        if let Some(v) = cmd.opt_u64("election-ticks")? {
            cfg.election_timeout_ticks = as_u32(v)?;
        }
        if let Some(v) = cmd.opt_u64("heartbeat-ticks")? {
            cfg.heartbeat_interval_ticks = as_u32(v)?;
        }
        if let Some(v) = cmd.opt_u64("inflight")? {
            cfg.inflight_appends_max = v as usize;
        }
        if let Some(v) = cmd.opt_u64("max-entries")? {
            cfg.append_entries_max = v as usize;
        }
        if let Some(v) = cmd.opt_u64("max-uncommitted")? {
            cfg.uncommitted_entries_max = v as usize;
        }
        self.nodes.insert(id, Node::new(cfg, state)?);
        self.print_status(id, out)
    }

    /// Ticks `id` up to `n` times; with `until_active`, stops once the node does something.
    fn tick(&mut self, id: NodeId, n: u64, until_active: bool, out: &mut String) -> Result<(), String> {
        let node = self.node(id)?;
        for _ in 0..n {
            let had_ready = node.raw()?.has_ready();
            node.raw()?.tick();
            let before = node.seen.clone();
            node.report_changes(out, "");
            if until_active && (node.seen != before || (!had_ready && node.raw()?.has_ready())) {
                break;
            }
        }
        Ok(())
    }

    /// One round of the Ready contract for `id`. Returns whether there was anything to do.
    fn process_ready(&mut self, id: NodeId, out: &mut String) -> Result<bool, String> {
        let node = self.node(id)?;
        let Some(raw) = node.raw.as_mut() else { return Ok(false) };
        if !raw.has_ready() {
            return Ok(false);
        }
        let ready = raw.ready();
        if ready.is_empty() {
            // Nothing was handed out after all (say, every follower is paused): no progress.
            raw.advance();
            return Ok(false);
        }
        let _ = writeln!(out, "> {id} handling Ready");
        print_ready(&ready, out);
        // 1. Persist: snapshot, entries, hard state.
        if let Some(snapshot) = &ready.snapshot {
            node.store.persist_snapshot(snapshot);
        }
        node.store.persist_entries(&ready.entries);
        if let Some(hs) = ready.hard_state {
            node.store.hard_state = hs;
        }
        // 3. Apply (sending is queuing, below, which nothing in between can observe).
        if let Some(snapshot) = &ready.snapshot {
            node.load_snapshot(snapshot);
        }
        for entry in &ready.committed_entries {
            if let EntryPayload::Command(data) = &entry.payload {
                node.applied.push(String::from_utf8_lossy(data).into_owned());
            }
        }
        node.raw()?.advance();
        node.report_changes(out, "  ");
        // 2. Send.
        for m in ready.messages {
            self.mailbox.entry(m.to).or_default().push_back(m);
        }
        Ok(true)
    }

    fn can_talk(&self, a: NodeId, b: NodeId) -> bool {
        match &self.groups {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }

    /// Delivers (or drops) the selected messages. Returns whether any was taken.
    fn deliver(&mut self, sel: &Selection, out: &mut String) -> Result<bool, String> {
        let mut any = false;
        let recipients: Vec<NodeId> = self.mailbox.keys().copied().collect();
        for to in recipients {
            let queue = self.mailbox.remove(&to).unwrap_or_default();
            let (taken, kept): (VecDeque<Message>, VecDeque<Message>) =
                queue.into_iter().partition(|m| sel.takes(m));
            if !kept.is_empty() {
                self.mailbox.insert(to, kept);
            }
            if taken.is_empty() {
                continue;
            }
            any = true;
            let _ = writeln!(out, "> {to} receiving messages");
            for m in taken {
                let line = fmt_msg(&m);
                let reason = if sel.drop.contains(&to) {
                    Some("dropped".to_string())
                } else if !self.can_talk(m.from, to) {
                    Some("dropped: partition".to_string())
                } else if self.nodes.get(&to).is_none_or(|n| n.raw.is_none()) {
                    Some(format!("dropped: {to} is down"))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    let _ = writeln!(out, "  {line} ({reason})");
                    continue;
                }
                let _ = writeln!(out, "  {line}");
                let node = self.node(to)?;
                node.raw()?.step(m);
                node.report_changes(out, "  ");
            }
        }
        Ok(any)
    }

    fn stabilize(&mut self, ids: &BTreeSet<NodeId>, out: &mut String) -> Result<(), String> {
        const ROUNDS_MAX: usize = 100;
        for _ in 0..ROUNDS_MAX {
            let mut moved = false;
            for &id in ids {
                moved |= self.process_ready(id, out)?;
            }
            moved |= self.deliver(&Selection::only(ids), out)?;
            if !moved {
                return Ok(());
            }
        }
        Err(format!("not stable after {ROUNDS_MAX} rounds"))
    }

    fn restart(&mut self, id: NodeId, out: &mut String) -> Result<(), String> {
        let node = self.node(id)?;
        if node.raw.is_some() {
            return Err(format!("node {id} is running"));
        }
        node.restarts += 1;
        let rng = Box::new(SimRng::new(id.0 + 1000 * node.restarts));
        let state = node.store.recovered();
        let raw = RawNode::new(node.cfg.clone(), state, rng).map_err(|e| e.to_string())?;
        node.raw = Some(raw);
        node.applied.clear();
        if let Some(snapshot) = node.store.snapshot.clone() {
            node.load_snapshot(&snapshot);
        }
        let hs = node.store.hard_state;
        let snap = node
            .store
            .snapshot
            .as_ref()
            .map_or("0/0".to_string(), |s| format!("{}/{}", s.meta.index, s.meta.term));
        let entries = match (node.store.entries.first(), node.store.entries.last()) {
            (Some(a), Some(b)) => format!("{}..{}", a.index, b.index),
            _ => "none".to_string(),
        };
        let _ = writeln!(
            out,
            "{id} restarted from disk: term={} vote={} commit={} snapshot={snap} entries={entries}",
            hs.term,
            hs.vote.map_or("none".to_string(), |v| v.to_string()),
            hs.commit
        );
        node.report_changes(out, "");
        Ok(())
    }

    fn snapshot_and_compact(&mut self, id: NodeId, out: &mut String) -> Result<(), String> {
        let node = self.node(id)?;
        let data = node.snapshot_data();
        let raw = node.raw()?;
        let index = raw.status().applied;
        let snapshot = match raw.create_snapshot(index, data) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return Ok(());
            }
        };
        if let Err(e) = raw.compact(index) {
            let _ = writeln!(out, "error: {e}");
            return Ok(());
        }
        node.store.persist_snapshot(&snapshot);
        let _ = writeln!(
            out,
            "{id} snapshot {}/{} {}; log compacted through {index}",
            snapshot.meta.index,
            snapshot.meta.term,
            fmt_membership(&snapshot.meta.membership)
        );
        Ok(())
    }

    fn print_status(&mut self, id: NodeId, out: &mut String) -> Result<(), String> {
        let node = self.node(id)?;
        let Some(raw) = node.raw.as_ref() else {
            let _ = writeln!(out, "{id} is down");
            return Ok(());
        };
        let st = raw.status();
        let role = node.observe().map_or("?", |o| o.role);
        let _ = writeln!(
            out,
            "{id} {role} term={} leader={} commit={} applied={} last={} snapshot={} {}",
            st.term,
            st.leader.map_or("none".to_string(), |l| l.to_string()),
            st.commit,
            st.applied,
            st.last_index,
            st.snapshot_index,
            fmt_membership(&st.membership)
        );
        for f in &st.followers {
            let state = match f.state {
                ProgressState::Probe => "probe".to_string(),
                ProgressState::Replicate => "replicate".to_string(),
                ProgressState::Snapshot(i) => format!("snapshot@{i}"),
            };
            let _ = writeln!(out, "  {} match={} {state}", f.id, f.matched);
        }
        Ok(())
    }

    fn print_log(&mut self, id: NodeId, out: &mut String) -> Result<(), String> {
        let node = self.node(id)?;
        let Some(raw) = node.raw.as_ref() else {
            let _ = writeln!(out, "{id} is down");
            return Ok(());
        };
        let first = raw.snapshot_index();
        let term = raw.term_at(first).unwrap_or_default();
        let _ = writeln!(out, "{id} log: snapshot {first}/{term}");
        let mut index = first.next();
        while let Some(entry) = raw.entry(index) {
            let _ = writeln!(out, "  {}", fmt_entry(entry));
            index = index.next();
        }
        let _ = writeln!(out, "{id} state machine: [{}]", node.applied.join(" "));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Printing: the format is an API, keep it compact and stable.
// ---------------------------------------------------------------------------------------------

fn print_result<E: std::fmt::Display>(out: &mut String, result: Result<String, E>) {
    match result {
        Ok(s) if s.is_empty() => {}
        Ok(s) => {
            let _ = writeln!(out, "{s}");
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
        }
    }
}

fn print_ready(ready: &Ready, out: &mut String) {
    if let Some(hs) = &ready.hard_state {
        let vote = hs.vote.map_or("none".to_string(), |v| v.to_string());
        let _ = writeln!(out, "  HardState term={} vote={vote} commit={}", hs.term, hs.commit);
    }
    if let Some(s) = &ready.snapshot {
        let _ = writeln!(
            out,
            "  Snapshot {}/{} {}",
            s.meta.index,
            s.meta.term,
            fmt_membership(&s.meta.membership)
        );
    }
    if !ready.entries.is_empty() {
        let _ = writeln!(out, "  Entries: {}", fmt_entries(&ready.entries));
    }
    if !ready.messages.is_empty() {
        let _ = writeln!(out, "  Messages:");
        for m in &ready.messages {
            let _ = writeln!(out, "    {}", fmt_msg(m));
        }
    }
    if !ready.committed_entries.is_empty() {
        let _ = writeln!(out, "  CommittedEntries: {}", fmt_entries(&ready.committed_entries));
    }
    if !ready.read_states.is_empty() {
        let reads: Vec<String> =
            ready.read_states.iter().map(|r| format!("ctx={} index={}", r.ctx, r.index)).collect();
        let _ = writeln!(out, "  ReadStates: {}", reads.join(", "));
    }
}

fn fmt_entry(e: &Entry) -> String {
    let payload = match &e.payload {
        EntryPayload::Empty => "empty".to_string(),
        EntryPayload::Command(data) => format!("{:?}", String::from_utf8_lossy(data)),
        EntryPayload::ConfChange(c) => {
            let kind = match c.kind {
                ConfChangeKind::AddVoter => "add-voter",
                ConfChangeKind::AddLearner => "add-learner",
                ConfChangeKind::Remove => "remove",
            };
            format!("{kind}({})", c.node)
        }
    };
    format!("{}/{} {payload}", e.index, e.term)
}

fn fmt_entries(entries: &[Entry]) -> String {
    entries.iter().map(fmt_entry).collect::<Vec<_>>().join(", ")
}

fn fmt_ids(ids: &BTreeSet<NodeId>) -> String {
    ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

fn fmt_membership(m: &Membership) -> String {
    format!("voters=({}) learners=({})", fmt_ids(&m.voters), fmt_ids(&m.learners))
}

/// The name a message's kind has in the output and in `deliver-msgs type=`.
fn msg_kind(m: &Message) -> &'static str {
    match &m.body {
        MessageBody::Append { .. } => "Append",
        MessageBody::AppendResponse { .. } => "AppendResponse",
        MessageBody::Heartbeat { .. } => "Heartbeat",
        MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
        MessageBody::Vote { pre: true, .. } => "PreVote",
        MessageBody::Vote { pre: false, .. } => "Vote",
        MessageBody::VoteResponse { pre: true, .. } => "PreVoteResponse",
        MessageBody::VoteResponse { pre: false, .. } => "VoteResponse",
        MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
        MessageBody::TimeoutNow => "TimeoutNow",
        MessageBody::ReadIndex { .. } => "ReadIndex",
        MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
    }
}

fn fmt_msg(m: &Message) -> String {
    let mut s = format!("{}->{} {} term={}", m.from, m.to, msg_kind(m), m.term);
    let _ = match &m.body {
        MessageBody::Append { prev_index, prev_term, entries, commit } => {
            let ids: Vec<String> = entries.iter().map(|e| format!("{}/{}", e.index, e.term)).collect();
            write!(s, " prev={prev_index}/{prev_term} entries=[{}] commit={commit}", ids.join(" "))
        }
        MessageBody::AppendResponse { reject: false, index, .. } => write!(s, " index={index}"),
        MessageBody::AppendResponse { reject: true, index, hint_index, hint_term } => {
            write!(s, " REJECT index={index} hint={hint_index}/{hint_term}")
        }
        MessageBody::Heartbeat { commit, read_round } => write!(s, " commit={commit} round={read_round}"),
        MessageBody::HeartbeatResponse { read_round } => write!(s, " round={read_round}"),
        MessageBody::Vote { last_index, last_term, transfer, .. } => {
            write!(s, " last={last_index}/{last_term}{}", if *transfer { " transfer" } else { "" })
        }
        MessageBody::VoteResponse { reject, .. } => write!(s, "{}", if *reject { " REJECT" } else { "" }),
        MessageBody::InstallSnapshot { snapshot } => write!(
            s,
            " snap={}/{} {}",
            snapshot.meta.index,
            snapshot.meta.term,
            fmt_membership(&snapshot.meta.membership)
        ),
        MessageBody::TimeoutNow => Ok(()),
        MessageBody::ReadIndex { ctx } => write!(s, " ctx={ctx}"),
        MessageBody::ReadIndexResponse { ctx, index } => write!(s, " ctx={ctx} index={index}"),
    };
    s
}
