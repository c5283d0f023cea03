//! Lists against a real Redis: the same commands to both, every reply compared byte for byte
//! as it crosses the wire, in RESP2 and in RESP3 (the redis crate reads `$-1`, `*-1` and `_`
//! all as nil, so this file reads raw frames).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::reference::Reference;
use crate::support::{shard_of, ClusterOptions, TestCluster};

/// A connection that sends commands and hands back each reply's bytes as they arrived.
struct RawConnection {
    reader: BufReader<TcpStream>,
}

impl RawConnection {
    fn open(addr: SocketAddr) -> RawConnection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        RawConnection { reader: BufReader::new(stream) }
    }

    /// Sends `args` as a RESP array and returns the reply's bytes.
    fn call(&mut self, args: &[&str]) -> Vec<u8> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        self.reader.get_mut().write_all(&request).expect("send");
        let mut reply = Vec::new();
        self.read_frame(&mut reply);
        reply
    }

    /// Reads one RESP2 or RESP3 frame, nested ones included, onto `out`.
    fn read_frame(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.reader.read_until(b'\n', out).expect("reply line");
        let line = String::from_utf8_lossy(&out[start..]).trim_end().to_string();
        let (kind, rest) = line.split_at(1);
        let len: i64 = rest.parse().unwrap_or(0);
        match kind {
            "$" | "=" | "!" if len >= 0 => {
                let mut body = vec![0; len as usize + 2];
                self.reader.read_exact(&mut body).expect("bulk body");
                out.extend_from_slice(&body);
            }
            "*" | "~" | ">" => (0..len).for_each(|_| self.read_frame(out)),
            "%" | "|" => (0..2 * len).for_each(|_| self.read_frame(out)),
            _ => {}
        }
    }
}

/// Runs each line of `script` (a command, its words split on whitespace) on PPDB and on Redis
/// in protocol `protocol`, and panics at the first reply whose bytes differ.
fn assert_same_frames(ppdb: SocketAddr, redis: SocketAddr, protocol: &str, script: &str) {
    let (mut ours, mut theirs) = (RawConnection::open(ppdb), RawConnection::open(redis));
    // HELLO's own answer names the server, so it is not compared.
    ours.call(&["HELLO", protocol]);
    theirs.call(&["HELLO", protocol]);
    for command in script.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let args: Vec<&str> = command.split_whitespace().collect();
        let (our_reply, their_reply) = (ours.call(&args), theirs.call(&args));
        assert_eq!(
            String::from_utf8_lossy(&our_reply),
            String::from_utf8_lossy(&their_reply),
            "`{command}` in RESP{protocol}: PPDB's reply (left) differs from Redis's (right)"
        );
    }
}

/// Every list command but the pops, at its edges: indexes past either end, missing keys,
/// WRONGTYPE, each argument error in the order Redis checks them, LPOS's options.
const LIST_SCRIPT: &str = "
    DEL l s none
    DEL l2
    SET s v
    LPUSH l c b a
    RPUSH l d e f
    LPUSHX l z
    RPUSHX l y
    LPUSHX none x
    RPUSHX none x
    EXISTS none
    LPUSH s x
    RPUSHX s x
    LLEN l
    LLEN none
    LLEN s
    LRANGE l 0 -1
    LRANGE l 1 2
    LRANGE l -3 -1
    LRANGE l -100 100
    LRANGE l 5 2
    LRANGE l -1 -2
    LRANGE l 8 10
    LRANGE l -9223372036854775808 9223372036854775807
    LRANGE none 0 -1
    LRANGE s 0 -1
    LRANGE l x 1
    LRANGE s x 1
    LRANGE l 0 99999999999999999999
    LINDEX l 0
    LINDEX l -1
    LINDEX l 8
    LINDEX l -9
    LINDEX l 9223372036854775807
    LINDEX l -9223372036854775808
    LINDEX l x
    LINDEX none x
    LINDEX s x
    LSET l 0 A
    LSET l -1 Y
    LSET l 8 q
    LSET l -9 q
    LSET l x q
    LSET none x q
    LSET s x q
    LSET none 0 q
    LRANGE l 0 -1
    LINSERT l BEFORE c C
    LINSERT l after c D
    LINSERT l BeFoRe nothere q
    LINSERT none before c q
    LINSERT s before c q
    LINSERT l inside c q
    LINSERT none inside c q
    RPUSH l a b a a
    LRANGE l 0 -1
    LPOS l a
    LPOS l a RANK 2
    LPOS l a RANK -1
    LPOS l a RANK -2 COUNT 2
    LPOS l a COUNT 0
    LPOS l a COUNT 0 MAXLEN 5
    LPOS l a RANK -1 MAXLEN 2 COUNT 0
    LPOS l a RANK 9 COUNT 0
    LPOS l a RANK 9
    LPOS l a rank 1 RANK 2 count 1 COUNT 0
    LPOS l a RANK -9223372036854775808
    LPOS l a RANK -9223372036854775808 COUNT 1
    LPOS l a RANK -9223372036854775807
    LPOS l a RANK 9223372036854775807 COUNT 0
    LPOS l a RANK 0
    LPOS l a COUNT 0 RANK 0
    LPOS l a RANK x
    LPOS l a RANK 99999999999999999999
    LPOS l a COUNT -1
    LPOS l a COUNT x
    LPOS l a MAXLEN -1
    LPOS l a MAXLEN x
    LPOS l a RANK
    LPOS l a FOO 1
    LPOS l nothere
    LPOS l nothere COUNT 0
    LPOS none a
    LPOS none a COUNT 0
    LPOS s a
    LPOS s a RANK 0
    LREM l 1 a
    LREM l -1 a
    LRANGE l 0 -1
    LREM l 0 a
    LREM l 0 a
    LREM l x a
    LREM none 1 a
    LREM none x a
    LREM s 1 a
    LRANGE l 0 -1
    LTRIM l 1 -2
    LRANGE l 0 -1
    LTRIM l -100 100
    LTRIM l x 1
    LTRIM none 0 1
    LTRIM s 0 1
    LTRIM s x 1
    LTRIM l 5 2
    EXISTS l
    LPUSH l
    LINSERT l before a
    LPOS l
    RPUSH l 1 2 3
    TYPE l
    RENAME l l2
    LRANGE l2 0 -1
    EXPIRE l2 100
    TTL l2
    MULTI
    LPUSH l2 0
    LRANGE l2 0 -1
    LSET l2 9 x
    LINDEX l2 0
    EXEC
    RPUSH l2 4
    GET l2
    DEL l2
    TYPE l2
";

#[test]
fn list_commands_answer_as_redis_does_in_resp2_and_resp3() {
    let cluster = TestCluster::start(ClusterOptions::default());
    let reference = Reference::start();
    // RENAME works within a shard: `l2` stands for a name in the shard of `l`.
    let shards = cluster.options.shards;
    let partner = (2..)
        .map(|n| format!("l{n}"))
        .find(|name| shard_of(name.as_bytes(), shards) == shard_of(b"l", shards));
    let script = LIST_SCRIPT.replace("l2", &partner.expect("some name shares the shard of `l`"));
    for protocol in ["2", "3"] {
        assert_same_frames(cluster.node(1).client_addr, reference.addr(), protocol, &script);
    }
}
