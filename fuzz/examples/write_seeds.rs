//! Writes the seeds of `fuzz/seeds/` whose formats the code defines (handshake and peer frames,
//! log entries with collection operations, key-space snapshots with every value type, snapshot
//! files), through the product's own encoders, so a format change is one run away from new
//! seeds: `cargo run --example write_seeds` in `fuzz/`. Each seed is decoded back before it is
//! written. The other seeds are written by hand.

use std::path::Path;
use std::sync::Arc;

use ppdb::kv::command::{KvRead, KvWrite, WriteOp};
use ppdb::kv::scan::scan_hash;
use ppdb::kv::TxnStep;
use ppdb::kv::types::{HashRead, HashWrite};
use ppdb::kv::{CollectionRead, CollectionWrite, KvStore};
use ppdb::node::raft_storage::encode_meta;
use ppdb::storage::disk::{Disk, SimDisk};
use ppdb::storage::snapshot_file::SnapshotStore;
use ppdb::storage::wal::GroupId;
use ppdb::transport::frame::{decode_frame, Frame, FRAME_HEADER_BYTES};
use ppdb::transport::handshake::{Hello, Incarnation, Refusal, GUEST_TARGET, PROTOCOL_VERSION};
use ppdb::node::join_credential::encode_authorized_join;
use ppdb::transport::tls::decode_certificates;
use ppdb::transport::tls::throwaway::ThrowawayCa;
use ppdb::transport::RefusalReason;
use ppdb_raft::{LogIndex, Membership, NodeId, SnapshotMeta, Term};

/// The entry time of the seeds' writes.
const NOW_MS: u64 = 1_765_000_000_000;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
    println!("seeds/{target}/{name}: {} bytes", bytes.len());
}

/// `mode`, then the frame's kind and payload: the sealed form the frame harnesses take.
fn sealed(mode: u8, frame: &Frame) -> Vec<u8> {
    let wire = frame.encode();
    let decoded = decode_frame(&wire, usize::MAX).expect("a frame decodes").map(|(f, _)| f);
    assert_eq!(decoded.as_ref(), Some(frame));
    let mut seed = vec![mode, wire[4]];
    seed.extend_from_slice(&wire[FRAME_HEADER_BYTES..]);
    seed
}

fn hello(cluster: &str, from: u64, to: NodeId, incarnation: u64) -> Frame {
    Frame::Handshake(Hello {
        version: PROTOCOL_VERSION,
        cluster_id: cluster.to_string(),
        from: NodeId(from),
        to,
        incarnation: Incarnation(incarnation),
    })
}

fn ack(node: u64, incarnation: u64) -> Frame {
    Frame::HandshakeAck { node_id: NodeId(node), incarnation: Incarnation(incarnation) }
}

/// The handshake harness: mode 2 is the acceptor (node 1 of cluster "fuzz"), 3 the dialer of
/// node 2, 7 the dialer that recorded incarnation 22, 11 a guest.
fn handshake_seeds() {
    let us = NodeId(1);
    write("handshake", "hello_peer", &sealed(2, &hello("fuzz", 2, us, 22)));
    write("handshake", "hello_recorded_peer", &sealed(2, &hello("fuzz", 3, us, 33)));
    write("handshake", "hello_reborn_peer", &sealed(2, &hello("fuzz", 3, us, 34)));
    write("handshake", "hello_removed", &sealed(2, &hello("fuzz", 4, us, 44)));
    write("handshake", "hello_guest", &sealed(2, &hello("fuzz", 9, GUEST_TARGET, 99)));
    write("handshake", "hello_other_cluster", &sealed(2, &hello("other", 2, us, 22)));
    write("handshake", "ack", &sealed(3, &ack(2, 22)));
    write("handshake", "ack_recorded", &sealed(7, &ack(2, 22)));
    write("handshake", "ack_reborn", &sealed(7, &ack(2, 23)));
    write("handshake", "ack_guest", &sealed(11, &ack(5, 55)));
    let mismatch = RefusalReason::IncarnationMismatch {
        node: NodeId(1),
        recorded: Incarnation(11),
        presented: Incarnation(12),
    };
    write(
        "handshake",
        "refusal_incarnation",
        &sealed(3, &Frame::HandshakeRefusal(Refusal(mismatch.clone()))),
    );
    write("peer_frame", "hello", &sealed(1, &hello("fuzz", 2, us, 22)));
    write("peer_frame", "ack", &sealed(1, &ack(2, 22)));
    write("peer_frame", "refusal_incarnation", &sealed(1, &Frame::HandshakeRefusal(Refusal(mismatch))));
}

fn hset(key: &str, pairs: &[(&str, &str)], reply_ok: bool) -> WriteOp {
    let pairs = pairs.iter().map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
    WriteOp::Collection(CollectionWrite::Hash(HashWrite::Set { key: key.into(), pairs, reply_ok }))
}

fn hget(key: &str, field: &str) -> KvRead {
    KvRead::Collection(CollectionRead::Hash(HashRead::Get { key: key.into(), field: field.into() }))
}

/// The log-entry harness: selector 0 decodes a write, 1 a read.
fn log_entry_seeds() {
    let entry = |op: WriteOp| {
        let write = KvWrite { now_ms: NOW_MS, op };
        let encoded = write.encode();
        assert_eq!(KvWrite::decode(&encoded).expect("a write decodes"), write);
        [&[0u8][..], &encoded].concat()
    };
    let read = |read: KvRead| {
        let encoded = read.encode();
        assert_eq!(KvRead::decode(&encoded).expect("a read decodes"), read);
        [&[1u8][..], &encoded].concat()
    };
    write("log_entry", "kv_hset", &entry(hset("h", &[("f1", "v1"), ("f2", "v2")], false)));
    write("log_entry", "kv_hmset", &entry(hset("h", &[("f", "v")], true)));
    let steps = vec![TxnStep::Write(hset("h", &[("f", "v")], false)), TxnStep::Read(hget("h", "f"))];
    write("log_entry", "kv_txn_hset_hget", &entry(WriteOp::Transaction { steps, watched: Vec::new() }));
    write("log_entry", "kv_hget", &read(hget("h", "f")));
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A version 4 key-space snapshot (format in `kv/snapshot.rs`) holding a string with a
/// time to live and one value of each collection type, written by hand and canonicalised by
/// restoring it and snapshotting the store.
fn typed_kv_snapshot() -> Vec<u8> {
    // A value: its type, then its element count and elements (a string: its bytes).
    let value = |kind: u8, count: u64, parts: &[&[u8]]| {
        let mut out = vec![kind];
        if kind != 0 {
            put_varint(&mut out, count);
        }
        parts.iter().for_each(|part| put_bytes(&mut out, part));
        out
    };
    let mut zset = vec![4, 3];
    for (member, score) in [("a", 1.5), ("b", -2.0), ("c", f64::INFINITY)] {
        put_bytes(&mut zset, member.as_bytes());
        zset.extend_from_slice(&f64::to_bits(score).to_le_bytes());
    }
    let mut entries: Vec<(&str, Vec<u8>, Option<u64>)> = vec![
        ("string", value(0, 1, &[b"value"]), Some(NOW_MS + 60_000)),
        ("hash", value(1, 2, &[b"f1", b"v1", b"f2", b"v2"]), None),
        ("list", value(2, 3, &[b"x", b"y", b"x"]), None),
        ("set", value(3, 2, &[b"m1", b"m2"]), None),
        ("zset", zset, None),
    ];
    entries.sort_by_key(|(key, ..)| (scan_hash(key.as_bytes()), *key));
    let mut image = b"PPKV\x04".to_vec();
    put_varint(&mut image, NOW_MS);
    put_varint(&mut image, entries.len() as u64);
    for (key, value, ttl) in entries {
        put_bytes(&mut image, key.as_bytes());
        image.extend_from_slice(&value);
        match ttl {
            None => image.push(0),
            Some(at) => {
                image.push(1);
                put_varint(&mut image, at);
            }
        }
    }
    let crc = crc32c::crc32c(&image);
    image.extend_from_slice(&crc.to_le_bytes());
    let store = KvStore::restore(&image).expect("the typed snapshot restores");
    let canonical = store.snapshot();
    assert_eq!(KvStore::restore(&canonical).expect("restores again").snapshot(), canonical);
    canonical
}

/// The snapshot-file harness: mode 0 reads a file named group 1, index 5, and restores the
/// input itself when the file is not loaded.
fn snapshot_file_seeds() {
    let image = typed_kv_snapshot();
    write("snapshot_file", "kv_v4_typed", &[&[0u8][..], &image].concat());
    let meta = SnapshotMeta {
        index: LogIndex(5),
        term: Term(2),
        membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
    };
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(0));
    let store = SnapshotStore::open(Arc::clone(&disk), "/snapshots").expect("open a store");
    let file = store.save(GroupId(1), 5, &encode_meta(&meta), &image).expect("save a snapshot");
    let bytes = disk.read(&file.path).expect("read the file back");
    write("snapshot_file", "file_v2_kv_v4_typed", &[&[0u8][..], &bytes].concat());
}

fn resp_request_seeds() {
    let request = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        out
    };
    let stream = [
        request(&["HSET", "h", "f1", "v1", "f2", "v2"]),
        request(&["HMSET", "h", "f", "v"]),
        request(&["HGET", "h", "f1"]),
        request(&["HLEN", "h"]),
    ]
    .concat();
    write("resp_request", "hset_hget", &[&[0u8][..], stream.as_bytes()].concat());
}

/// The certificate identity harness: mode 0 and a DER certificate (a node's, a CA's), mode 1
/// and an authorized join request.
fn certificate_identity_seeds() {
    let ca = ThrowawayCa::new("seed CA").expect("a CA");
    let issued = ca.issue("node-1", &["127.0.0.1", "localhost", "::1"]).expect("a certificate");
    for (name, pem) in [("node_certificate", issued.cert_pem.as_str()), ("ca_certificate", ca.cert_pem())] {
        let der = decode_certificates("certificate", Path::new(name), pem.as_bytes()).expect("PEM decodes");
        let mut seed = vec![0];
        seed.extend_from_slice(&der[0]);
        write("certificate_identity", name, &seed);
    }
    let mut join = vec![1];
    join.extend_from_slice(&encode_authorized_join("0123456789abcdef", &[2, 0, 1]));
    write("certificate_identity", "authorized_join", &join);
}

fn main() {
    certificate_identity_seeds();
    handshake_seeds();
    log_entry_seeds();
    snapshot_file_seeds();
    resp_request_seeds();
}
