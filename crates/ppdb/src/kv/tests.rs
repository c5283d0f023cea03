//! Behaviour of the state machine compared with Redis 7 (replies checked against redis-server
//! 7.0.15 by hand; the tests do not need it).

use super::*;

/// A store plus a clock, with one helper per command.
struct Db {
    store: KvStore,
    now: u64,
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(b(s))
}

impl Db {
    fn new() -> Self {
        Self { store: KvStore::new(), now: 1_000_000 }
    }

    fn write(&mut self, op: WriteOp) -> Reply {
        let write = KvWrite { now_ms: self.now, op };
        // Every write also travels through the log encoding.
        let decoded = KvWrite::decode(&write.encode()).expect("round trip");
        let reply = self.store.apply(&decoded);
        self.store.check_indexes();
        reply
    }

    fn read(&self, query: KvRead) -> Reply {
        self.store.read(&query, self.now)
    }

    fn set(&mut self, key: &str, value: &str) -> Reply {
        self.set_with(key, value, SetCondition::Always, SetTtl::Clear, false)
    }

    fn set_with(&mut self, key: &str, value: &str, condition: SetCondition, ttl: SetTtl, get: bool) -> Reply {
        self.write(WriteOp::Set { key: b(key), value: b(value), condition, ttl, get })
    }

    fn get(&self, key: &str) -> Reply {
        self.read(KvRead::Get { key: b(key) })
    }

    fn incr(&mut self, key: &str, delta: i64) -> Reply {
        self.write(WriteOp::IncrBy { key: b(key), delta })
    }

    fn incr_float(&mut self, key: &str, delta: f64) -> Reply {
        self.write(WriteOp::IncrByFloat { key: b(key), delta })
    }

    fn expire_in(&mut self, key: &str, ms: i64, condition: ExpireCondition) -> Reply {
        self.write(WriteOp::Expire { key: b(key), when: ExpireTime::After(ms), condition })
    }

    fn ttl(&self, key: &str) -> Reply {
        self.read(KvRead::Ttl { key: b(key) })
    }

    fn pttl(&self, key: &str) -> Reply {
        self.read(KvRead::PTtl { key: b(key) })
    }

    /// KEYS `pattern`, sorted (KEYS answers in scan order, as Redis answers in hash order).
    fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self.read(KvRead::Keys { pattern: b(pattern) }) {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(k) => String::from_utf8(k).expect("utf8 key"),
                    other => panic!("unexpected {other:?}"),
                })
                .collect(),
            other => panic!("unexpected {other:?}"),
        };
        keys.sort();
        keys
    }
}

#[test]
fn set_and_get() {
    let mut db = Db::new();
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(db.set("k", "v"), Reply::Ok);
    assert_eq!(db.get("k"), bulk("v"));
    assert_eq!(db.read(KvRead::Type { key: b("k") }), Reply::Status("string"));
    assert_eq!(db.read(KvRead::Type { key: b("x") }), Reply::Status("none"));
}

#[test]
fn set_nx_xx_and_get_option() {
    let mut db = Db::new();
    assert_eq!(db.set_with("k", "1", SetCondition::IfPresent, SetTtl::Clear, false), Reply::Nil);
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(db.set_with("k", "1", SetCondition::IfAbsent, SetTtl::Clear, false), Reply::Ok);
    assert_eq!(db.set_with("k", "2", SetCondition::IfAbsent, SetTtl::Clear, false), Reply::Nil);
    assert_eq!(db.get("k"), bulk("1"));
    // SET NX GET (Redis 7): refused, but replies the old value.
    assert_eq!(db.set_with("k", "2", SetCondition::IfAbsent, SetTtl::Clear, true), bulk("1"));
    assert_eq!(db.set_with("k", "3", SetCondition::IfPresent, SetTtl::Clear, true), bulk("1"));
    assert_eq!(db.get("k"), bulk("3"));
    assert_eq!(db.set_with("new", "x", SetCondition::Always, SetTtl::Clear, true), Reply::Nil);
}

#[test]
fn set_ttl_clear_keep_and_past() {
    let mut db = Db::new();
    db.set_with("k", "v", SetCondition::Always, SetTtl::At(db.now + 10_000), false);
    assert_eq!(db.ttl("k"), Reply::Integer(10));
    db.set_with("k", "w", SetCondition::Always, SetTtl::Keep, false);
    assert_eq!(db.pttl("k"), Reply::Integer(10_000));
    db.set("k", "x");
    assert_eq!(db.ttl("k"), Reply::Integer(-1), "plain SET clears the TTL");
    // SET ... PXAT in the past: OK, and the key is gone.
    assert_eq!(db.set_with("k", "y", SetCondition::Always, SetTtl::At(1), false), Reply::Ok);
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(db.store.len_including_expired(), 0);
}

#[test]
fn setnx_getdel_getex() {
    let mut db = Db::new();
    assert_eq!(db.write(WriteOp::SetNx { key: b("k"), value: b("1") }), Reply::Integer(1));
    assert_eq!(db.write(WriteOp::SetNx { key: b("k"), value: b("2") }), Reply::Integer(0));
    let at = db.now + 5_000;
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::At(at) }), bulk("1"));
    assert_eq!(db.ttl("k"), Reply::Integer(5));
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::Persist }), bulk("1"));
    assert_eq!(db.ttl("k"), Reply::Integer(-1));
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::Unchanged }), bulk("1"));
    // GETEX with a past time returns the value and deletes the key.
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::At(1) }), bulk("1"));
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::Persist }), Reply::Nil);
    db.set("d", "v");
    assert_eq!(db.write(WriteOp::GetDel { key: b("d") }), bulk("v"));
    assert_eq!(db.write(WriteOp::GetDel { key: b("d") }), Reply::Nil);
}

#[test]
fn mset_msetnx_mget_del_exists() {
    let mut db = Db::new();
    let pairs = vec![(b("a"), b("1")), (b("b"), b("2"))];
    assert_eq!(db.write(WriteOp::MSet { pairs }), Reply::Ok);
    let mget = db.read(KvRead::MGet { keys: vec![b("a"), b("x"), b("b")] });
    assert_eq!(mget, Reply::Array(vec![bulk("1"), Reply::Nil, bulk("2")]));
    let overlap = vec![(b("c"), b("3")), (b("a"), b("9"))];
    assert_eq!(db.write(WriteOp::MSetNx { pairs: overlap }), Reply::Integer(0));
    assert_eq!(db.get("c"), Reply::Nil, "MSETNX is all or nothing");
    let fresh = vec![(b("c"), b("3")), (b("d"), b("4"))];
    assert_eq!(db.write(WriteOp::MSetNx { pairs: fresh }), Reply::Integer(1));
    let exists = db.read(KvRead::Exists { keys: vec![b("a"), b("a"), b("zz")] });
    assert_eq!(exists, Reply::Integer(2), "EXISTS counts duplicates");
    let del = db.write(WriteOp::Del { keys: vec![b("a"), b("a"), b("c"), b("zz")] });
    assert_eq!(del, Reply::Integer(2), "DEL counts each removed key once");
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(2));
}

#[test]
fn incr_family_and_overflow() {
    let mut db = Db::new();
    assert_eq!(db.incr("n", 1), Reply::Integer(1));
    assert_eq!(db.incr("n", -5), Reply::Integer(-4));
    assert_eq!(db.get("n"), bulk("-4"));
    db.set("n", &i64::MAX.to_string());
    assert_eq!(db.incr("n", 1), Reply::Error(KvError::IncrOverflow));
    assert_eq!(db.get("n"), bulk("9223372036854775807"), "a failed INCR changes nothing");
    db.set("m", &i64::MIN.to_string());
    assert_eq!(db.incr("m", -1), Reply::Error(KvError::IncrOverflow));
    for bad in ["abc", "01", " 1", "1.5", "", "+1"] {
        db.set("s", bad);
        assert_eq!(db.incr("s", 1), Reply::Error(KvError::NotInteger), "{bad:?}");
    }
    assert_eq!(KvError::IncrOverflow.message(), "ERR increment or decrement would overflow");
}

#[test]
fn incr_keeps_the_ttl() {
    let mut db = Db::new();
    db.set_with("n", "1", SetCondition::Always, SetTtl::At(db.now + 100_000), false);
    db.incr("n", 1);
    assert_eq!(db.ttl("n"), Reply::Integer(100));
}

#[test]
fn incrbyfloat_formats_like_redis() {
    let mut db = Db::new();
    db.set("f", "10.50");
    assert_eq!(db.incr_float("f", 0.1), bulk("10.6"));
    assert_eq!(db.incr_float("f", -5.0), bulk("5.6"));
    db.set("g", "5.0e3");
    assert_eq!(db.incr_float("g", 2.0e2), bulk("5200"));
    assert_eq!(db.incr_float("h", 3.0e3), bulk("3000"));
    assert_eq!(db.incr_float("h2", 10.5), bulk("10.5"));
    db.set("p", "0.1");
    assert_eq!(db.incr_float("p", 0.2), bulk("0.3"));
    db.set("bad", "abc");
    assert_eq!(db.incr_float("bad", 1.0), Reply::Error(KvError::NotFloat));
    assert_eq!(db.incr_float("i", f64::INFINITY), Reply::Error(KvError::NanOrInfinity));
    db.set("big", "1e308");
    assert_eq!(db.incr_float("big", 1e308), Reply::Error(KvError::NanOrInfinity));
    assert_eq!(db.get("big"), bulk("1e308"));
}

#[test]
fn append_strlen_getrange() {
    let mut db = Db::new();
    assert_eq!(db.write(WriteOp::Append { key: b("k"), value: b("Hello") }), Reply::Integer(5));
    assert_eq!(db.write(WriteOp::Append { key: b("k"), value: b(" World") }), Reply::Integer(11));
    assert_eq!(db.read(KvRead::StrLen { key: b("k") }), Reply::Integer(11));
    assert_eq!(db.read(KvRead::StrLen { key: b("none") }), Reply::Integer(0));
    db.set("s", "This is a string");
    let range = |db: &Db, start, end| db.read(KvRead::GetRange { key: b("s"), start, end });
    assert_eq!(range(&db, 0, 3), bulk("This"));
    assert_eq!(range(&db, -3, -1), bulk("ing"));
    assert_eq!(range(&db, 0, -1), bulk("This is a string"));
    assert_eq!(range(&db, 10, 100), bulk("string"));
    assert_eq!(range(&db, -1, -5), bulk(""), "both negative and start > end");
    assert_eq!(range(&db, 5, 3), bulk(""));
    assert_eq!(range(&db, -100, 3), bulk("This"));
    assert_eq!(range(&db, 100, 200), bulk(""));
    assert_eq!(range(&db, i64::MIN, i64::MAX), bulk("This is a string"));
    let missing = db.read(KvRead::GetRange { key: b("none"), start: 0, end: -1 });
    assert_eq!(missing, bulk(""), "a missing key is an empty string, not nil");
}

#[test]
fn append_and_setrange_respect_the_512_mib_limit() {
    let mut db = Db::new();
    let too_far = WriteOp::SetRange { key: b("k"), offset: VALUE_BYTES_MAX, value: b("x") };
    assert_eq!(db.write(too_far), Reply::Error(KvError::StringTooLong));
    let overflow = WriteOp::SetRange { key: b("k"), offset: u64::MAX, value: b("x") };
    assert_eq!(db.write(overflow), Reply::Error(KvError::StringTooLong));
    // An empty value never checks the limit and creates nothing.
    let empty = WriteOp::SetRange { key: b("k"), offset: VALUE_BYTES_MAX, value: vec![] };
    assert_eq!(db.write(empty), Reply::Integer(0));
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(
        KvError::StringTooLong.message(),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
}

/// Redis checks the key's type before the size: SETRANGE past the limit on a list is WRONGTYPE.
#[test]
fn setrange_past_the_limit_on_another_type_is_wrongtype() {
    let mut db = Db::new();
    let push = types::ListWrite::Push {
        key: b("list"),
        elements: vec![b("x")],
        side: types::list::Side::Left,
        existing_only: false,
    };
    db.write(WriteOp::Collection(CollectionWrite::List(push)));
    let too_far = WriteOp::SetRange { key: b("list"), offset: VALUE_BYTES_MAX, value: b("x") };
    assert_eq!(db.write(too_far), Reply::Error(KvError::WrongType));
}

#[test]
fn setrange_pads_with_zero_bytes() {
    let mut db = Db::new();
    assert_eq!(db.write(WriteOp::SetRange { key: b("k"), offset: 3, value: b("ab") }), Reply::Integer(5));
    assert_eq!(db.get("k"), Reply::Bulk(b"\0\0\0ab".to_vec()));
    db.set("h", "Hello World");
    assert_eq!(db.write(WriteOp::SetRange { key: b("h"), offset: 6, value: b("Redis") }), Reply::Integer(11));
    assert_eq!(db.get("h"), bulk("Hello Redis"));
    assert_eq!(db.write(WriteOp::SetRange { key: b("h"), offset: 20, value: vec![] }), Reply::Integer(11));
}

#[test]
fn ttl_and_pttl() {
    let mut db = Db::new();
    assert_eq!(db.ttl("k"), Reply::Integer(-2));
    db.set("k", "v");
    assert_eq!(db.ttl("k"), Reply::Integer(-1));
    assert_eq!(db.expire_in("k", 1_499, ExpireCondition::Always), Reply::Integer(1));
    assert_eq!(db.ttl("k"), Reply::Integer(1), "TTL rounds to the nearest second");
    assert_eq!(db.pttl("k"), Reply::Integer(1_499));
    db.now += 1_499;
    assert_eq!(db.pttl("k"), Reply::Integer(0), "alive while now == expire");
    db.now += 1;
    assert_eq!(db.ttl("k"), Reply::Integer(-2));
    assert_eq!(db.get("k"), Reply::Nil, "expired keys are invisible before removal");
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(0));
    assert_eq!(db.store.len_including_expired(), 1);
}

#[test]
fn expiretime_and_pexpiretime_give_the_absolute_expiry() {
    let mut db = Db::new();
    let expire_time = |db: &Db, key: &str| db.read(KvRead::ExpireTime { key: b(key) });
    let pexpire_time = |db: &Db, key: &str| db.read(KvRead::PExpireTime { key: b(key) });
    assert_eq!(expire_time(&db, "k"), Reply::Integer(-2));
    db.set("k", "v");
    assert_eq!(pexpire_time(&db, "k"), Reply::Integer(-1));
    let at = db.now as i64 + 2_999;
    assert_eq!(db.expire_in("k", 2_999, ExpireCondition::Always), Reply::Integer(1));
    assert_eq!(pexpire_time(&db, "k"), Reply::Integer(at));
    assert_eq!(expire_time(&db, "k"), Reply::Integer(at / 1000), "seconds round down, as Redis");
    db.now += 3_000;
    assert_eq!(expire_time(&db, "k"), Reply::Integer(-2), "an expired key has none");
}

#[test]
fn rename_and_renamenx_move_the_value_and_its_expiry() {
    let mut db = Db::new();
    let rename = |db: &mut Db, from: &str, to: &str, if_new: bool| {
        db.write(WriteOp::Rename { from: b(from), to: b(to), if_new })
    };
    assert_eq!(rename(&mut db, "missing", "b", false), Reply::Error(KvError::NoSuchKey));
    assert_eq!(rename(&mut db, "missing", "b", true), Reply::Error(KvError::NoSuchKey));
    db.set("a", "1");
    assert_eq!(db.expire_in("a", 5_000, ExpireCondition::Always), Reply::Integer(1));
    db.set("b", "2");
    assert_eq!(db.expire_in("b", 9_000, ExpireCondition::Always), Reply::Integer(1));
    assert_eq!(rename(&mut db, "a", "b", true), Reply::Integer(0), "RENAMENX keeps an existing target");
    assert_eq!(rename(&mut db, "a", "a", true), Reply::Integer(0));
    assert_eq!(rename(&mut db, "a", "a", false), Reply::Ok, "to itself: nothing changes");
    assert_eq!(db.pttl("a"), Reply::Integer(5_000));
    assert_eq!(rename(&mut db, "a", "b", false), Reply::Ok);
    assert_eq!((db.get("a"), db.get("b")), (Reply::Nil, bulk("1")));
    assert_eq!(db.pttl("b"), Reply::Integer(5_000), "the source's expiry replaces the target's");
    assert_eq!(rename(&mut db, "b", "c", true), Reply::Integer(1));
    assert_eq!((db.get("b"), db.get("c")), (Reply::Nil, bulk("1")));
    db.now += 5_001;
    assert_eq!(rename(&mut db, "c", "d", false), Reply::Error(KvError::NoSuchKey), "expired keys are absent");
}

#[test]
fn copy_duplicates_the_value_and_its_expiry() {
    let mut db = Db::new();
    let copy = |db: &mut Db, from: &str, to: &str, replace: bool| {
        db.write(WriteOp::Copy { from: b(from), to: b(to), replace })
    };
    assert_eq!(copy(&mut db, "missing", "b", true), Reply::Integer(0));
    db.set("a", "1");
    assert_eq!(db.expire_in("a", 5_000, ExpireCondition::Always), Reply::Integer(1));
    db.set("b", "2");
    assert_eq!(copy(&mut db, "a", "b", false), Reply::Integer(0), "an existing target needs REPLACE");
    assert_eq!(db.get("b"), bulk("2"));
    assert_eq!(copy(&mut db, "a", "b", true), Reply::Integer(1));
    assert_eq!(copy(&mut db, "a", "c", false), Reply::Integer(1));
    assert_eq!((db.get("a"), db.get("b"), db.get("c")), (bulk("1"), bulk("1"), bulk("1")));
    assert_eq!((db.pttl("b"), db.pttl("c")), (Reply::Integer(5_000), Reply::Integer(5_000)));
    assert_eq!(db.write(WriteOp::Append { key: b("c"), value: b("+") }), Reply::Integer(2));
    assert_eq!(db.get("a"), bulk("1"), "a copy changes on its own");
}

#[test]
fn expire_with_negative_or_past_time_deletes() {
    let mut db = Db::new();
    db.set("k", "v");
    assert_eq!(db.expire_in("k", -(db.now as i64) - 10_000, ExpireCondition::Always), Reply::Integer(1));
    assert_eq!(db.get("k"), Reply::Nil);
    assert_eq!(db.store.len_including_expired(), 0);
    assert_eq!(db.expire_in("k", 10, ExpireCondition::Always), Reply::Integer(0), "missing key");
}

#[test]
fn expire_conditions_nx_xx_gt_lt() {
    let mut db = Db::new();
    db.set("k", "v");
    assert_eq!(db.expire_in("k", 100_000, ExpireCondition::IfTtl), Reply::Integer(0));
    assert_eq!(
        db.expire_in("k", 100_000, ExpireCondition::IfLater),
        Reply::Integer(0),
        "GT: none is infinite"
    );
    assert_eq!(
        db.expire_in("k", 100_000, ExpireCondition::IfEarlier),
        Reply::Integer(1),
        "LT: none is infinite"
    );
    assert_eq!(db.expire_in("k", 50_000, ExpireCondition::IfNoTtl), Reply::Integer(0));
    assert_eq!(db.expire_in("k", 200_000, ExpireCondition::IfLater), Reply::Integer(1));
    assert_eq!(db.expire_in("k", 150_000, ExpireCondition::IfLater), Reply::Integer(0));
    assert_eq!(db.expire_in("k", 150_000, ExpireCondition::IfTtlAndEarlier), Reply::Integer(1));
    assert_eq!(
        db.expire_in("k", 150_000, ExpireCondition::IfEarlier),
        Reply::Integer(0),
        "equal is not less"
    );
    assert_eq!(db.expire_in("k", 300_000, ExpireCondition::IfTtlAndLater), Reply::Integer(1));
    assert_eq!(db.pttl("k"), Reply::Integer(300_000));
    assert_eq!(db.write(WriteOp::Persist { key: b("k") }), Reply::Integer(1));
    assert_eq!(db.write(WriteOp::Persist { key: b("k") }), Reply::Integer(0));
    assert_eq!(db.write(WriteOp::Persist { key: b("nokey") }), Reply::Integer(0));
    assert_eq!(db.expire_in("k", 1_000, ExpireCondition::IfNoTtl), Reply::Integer(1));
}

#[test]
fn writes_treat_expired_keys_as_absent() {
    let mut db = Db::new();
    db.set_with("k", "old", SetCondition::Always, SetTtl::At(db.now + 10), false);
    db.now += 11;
    assert_eq!(db.set_with("k", "new", SetCondition::IfAbsent, SetTtl::Clear, true), Reply::Nil);
    assert_eq!(db.get("k"), bulk("new"));
    assert_eq!(db.ttl("k"), Reply::Integer(-1));
    db.set_with("n", "41", SetCondition::Always, SetTtl::At(db.now + 10), false);
    db.now += 11;
    assert_eq!(db.incr("n", 1), Reply::Integer(1), "an expired counter restarts from 0");
}

#[test]
fn expired_keys_are_removed_through_the_log() {
    let mut db = Db::new();
    for i in 0..5 {
        let key = format!("k{i}");
        db.set_with(&key, "v", SetCondition::Always, SetTtl::At(db.now + (i + 1) * 10), false);
    }
    db.set("forever", "v");
    db.now += 35;
    let expired = db.store.expired_keys(db.now, 100);
    assert_eq!(expired, vec![b("k0"), b("k1"), b("k2")]);
    assert_eq!(db.store.expired_keys(db.now, 2).len(), 2);
    // k1 is rewritten before the removal entry is applied: it must survive.
    db.set("k1", "fresh");
    assert_eq!(db.write(WriteOp::RemoveExpired { keys: expired }), Reply::Integer(2));
    assert_eq!(db.keys("*"), vec!["forever", "k1", "k3", "k4"]);
    assert!(db.store.expired_keys(db.now, 100).is_empty());
}

#[test]
fn keys_patterns() {
    let mut db = Db::new();
    for key in ["hello", "hallo", "hxllo", "hllo", "heeeello", "a*b", "a?b", "other"] {
        db.set(key, "v");
    }
    assert_eq!(db.keys("h?llo"), vec!["hallo", "hello", "hxllo"]);
    assert_eq!(db.keys("h*llo"), vec!["hallo", "heeeello", "hello", "hllo", "hxllo"]);
    assert_eq!(db.keys("h[ae]llo"), vec!["hallo", "hello"]);
    assert_eq!(db.keys("h[^e]llo"), vec!["hallo", "hxllo"]);
    assert_eq!(db.keys("h[a-b]llo"), vec!["hallo"]);
    assert_eq!(db.keys("a\\*b"), vec!["a*b"]);
    assert_eq!(db.keys("a\\?b"), vec!["a?b"]);
    assert_eq!(db.keys("nomatch*"), Vec::<String>::new());
    assert_eq!(db.keys("*").len(), 8);
    db.set("", "empty key");
    assert_eq!(db.keys("*").len(), 9, "a lone star matches the empty key");
    assert_eq!(db.keys("**").len(), 8, "but `**` goes through the matcher, as in Redis");
}

#[test]
fn scan_returns_every_key_exactly_once() {
    let mut db = Db::new();
    let pairs: Vec<_> = (0..1000).map(|i| (format!("key:{i}").into_bytes(), b("v"))).collect();
    db.write(WriteOp::MSet { pairs });
    for count in [1, 7, 10, 1000, 5000] {
        let mut cursor = 0;
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let query = KvRead::Scan { cursor, pattern: None, count, type_name: None };
            let Reply::Scan { cursor: next, keys } = db.read(query) else { panic!("not a scan page") };
            seen.extend(keys);
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!(before, 1000, "COUNT {count}: every key exactly once");
        assert_eq!(seen.len(), 1000);
        assert!(calls >= 1000 / count.min(1000) as usize, "COUNT {count} bounds the page size");
    }
}

#[test]
fn scan_survives_concurrent_writes_and_filters() {
    let mut db = Db::new();
    let pairs: Vec<_> = (0..200).map(|i| (format!("a{i}").into_bytes(), b("v"))).collect();
    db.write(WriteOp::MSet { pairs });
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let query = KvRead::Scan { cursor, pattern: Some(b("a1*")), count: 10, type_name: Some(b("STRING")) };
        let Reply::Scan { cursor: next, keys } = db.read(query) else { panic!("not a scan page") };
        seen.extend(keys);
        // Churn between pages: add and delete other keys.
        round += 1;
        db.set(&format!("b{round}"), "x");
        db.write(WriteOp::Del { keys: vec![format!("b{}", round / 2).into_bytes()] });
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    seen.sort();
    let expected: Vec<_> = (0..200)
        .map(|i| format!("a{i}"))
        .filter(|k| k.starts_with("a1"))
        .map(String::into_bytes)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
    let other_type = KvRead::Scan { cursor: 0, pattern: None, count: 1000, type_name: Some(b("list")) };
    assert_eq!(db.read(other_type), Reply::Scan { cursor: 0, keys: vec![] });
}

#[test]
fn dbsize_randomkey_flushall() {
    let mut db = Db::new();
    assert_eq!(db.read(KvRead::RandomKey), Reply::Nil);
    db.set("a", "1");
    db.set_with("b", "2", SetCondition::Always, SetTtl::At(db.now + 5), false);
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(2));
    db.now += 6;
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(1));
    for _ in 0..20 {
        db.now += 1;
        assert_eq!(db.read(KvRead::RandomKey), bulk("a"), "never an expired key");
    }
    assert_eq!(db.write(WriteOp::FlushAll), Reply::Ok);
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(0));
    assert_eq!(db.store, KvStore { time_ms: db.now, ..KvStore::new() });
}

#[test]
fn replicas_applying_the_same_log_agree() {
    let log: Vec<KvWrite> = (0..300u64)
        .map(|i| {
            let key = format!("k{}", i % 17).into_bytes();
            let op = match i % 6 {
                0 => WriteOp::Set {
                    key,
                    value: i.to_string().into_bytes(),
                    condition: SetCondition::Always,
                    ttl: SetTtl::At(1_000 + i * 3),
                    get: false,
                },
                1 => WriteOp::IncrBy { key, delta: 3 },
                2 => WriteOp::Append { key, value: b("x") },
                3 => WriteOp::Expire {
                    key,
                    when: ExpireTime::At(1_000 + i as i64),
                    condition: ExpireCondition::IfLater,
                },
                4 => WriteOp::RemoveExpired { keys: vec![key] },
                _ => WriteOp::IncrByFloat { key, delta: 0.5 },
            };
            KvWrite { now_ms: 1_000 + i, op }
        })
        .collect();
    let mut a = KvStore::new();
    let mut replica = KvStore::new();
    let replies_a: Vec<_> = log.iter().map(|w| a.apply(w)).collect();
    let replies_b: Vec<_> =
        log.iter().map(|w| replica.apply(&KvWrite::decode(&w.encode()).expect("valid"))).collect();
    assert_eq!(replies_a, replies_b);
    assert_eq!(a.snapshot(), replica.snapshot());
    let mut restored = KvStore::restore(&a.snapshot()).expect("valid");
    let extra = KvWrite { now_ms: 2_000, op: WriteOp::IncrBy { key: b("k1"), delta: 1 } };
    assert_eq!(restored.apply(&extra), a.apply(&extra));
    assert_eq!(restored, a);
}

#[test]
fn a_transaction_applies_in_order_and_its_reads_see_its_writes() {
    let mut db = Db::new();
    db.set("old", "x");
    let steps = vec![
        TxnStep::Write(WriteOp::Set {
            key: b("k"),
            value: b("1"),
            condition: SetCondition::Always,
            ttl: SetTtl::At(db.now + 5_000),
            get: false,
        }),
        TxnStep::Write(WriteOp::IncrBy { key: b("k"), delta: 41 }),
        TxnStep::Read(KvRead::Get { key: b("k") }),
        TxnStep::Read(KvRead::PTtl { key: b("k") }),
        TxnStep::Write(WriteOp::Del { keys: vec![b("old")] }),
        TxnStep::Read(KvRead::MGet { keys: vec![b("old"), b("k")] }),
    ];
    let reply = db.write(WriteOp::Transaction { steps, watched: Vec::new() });
    assert_eq!(
        reply,
        Reply::Array(vec![
            Reply::Ok,
            Reply::Integer(42),
            bulk("42"),
            Reply::Integer(5_000),
            Reply::Integer(1),
            Reply::Array(vec![Reply::Nil, bulk("42")]),
        ])
    );
    assert_eq!(db.get("k"), bulk("42"));
    assert_eq!(db.get("old"), Reply::Nil);
}

#[test]
fn an_error_in_the_middle_of_a_transaction_is_that_steps_reply_only() {
    let mut db = Db::new();
    db.set("text", "abc");
    let steps = vec![
        TxnStep::Write(WriteOp::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] }),
        TxnStep::Write(WriteOp::IncrBy { key: b("text"), delta: 1 }),
        TxnStep::Write(WriteOp::IncrBy { key: b("a"), delta: 1 }),
        TxnStep::Read(KvRead::Get { key: b("text") }),
    ];
    let reply = db.write(WriteOp::Transaction { steps, watched: Vec::new() });
    assert_eq!(
        reply,
        Reply::Array(vec![Reply::Ok, Reply::Error(KvError::NotInteger), Reply::Integer(2), bulk("abc")])
    );
    assert_eq!(db.get("a"), bulk("2"));
    assert_eq!(db.get("b"), bulk("2"));
    assert_eq!(db.get("text"), bulk("abc"));
}

#[test]
fn transaction_steps_judge_expiry_by_the_entry_time_and_an_empty_one_is_empty() {
    let mut db = Db::new();
    db.set_with("soon", "v", SetCondition::Always, SetTtl::At(db.now + 10), false);
    db.now += 11;
    let steps = vec![
        TxnStep::Read(KvRead::Exists { keys: vec![b("soon")] }),
        TxnStep::Write(WriteOp::SetNx { key: b("soon"), value: b("new") }),
        TxnStep::Read(KvRead::Ttl { key: b("soon") }),
    ];
    let reply = db.write(WriteOp::Transaction { steps, watched: Vec::new() });
    assert_eq!(reply, Reply::Array(vec![Reply::Integer(0), Reply::Integer(1), Reply::Integer(-1)]));
    assert_eq!(
        db.write(WriteOp::Transaction { steps: Vec::new(), watched: Vec::new() }),
        Reply::Array(Vec::new())
    );
}

#[test]
fn data_bytes_count_keys_and_values_and_go_back_to_zero() {
    let mut db = Db::new();
    assert_eq!(db.store.data_bytes(), 0);
    db.set("k", "12345");
    assert_eq!(db.store.data_bytes(), state_machine::stored_bytes(b"k", 5));
    db.write(WriteOp::Append { key: b("k"), value: b("678") });
    db.write(WriteOp::SetRange { key: b("k"), offset: 20, value: b("x") });
    assert_eq!(db.store.data_bytes(), state_machine::stored_bytes(b"k", 21));
    db.set("other", "v");
    let restored = KvStore::restore(&db.store.snapshot()).expect("restore");
    assert_eq!(restored.data_bytes(), db.store.data_bytes(), "a restored replica counts the same");
    db.write(WriteOp::Del { keys: vec![b("k"), b("other")] });
    assert_eq!(db.store.data_bytes(), 0);
    db.set("k", "v");
    db.write(WriteOp::FlushAll);
    assert_eq!(db.store.data_bytes(), 0);
}

#[test]
fn the_logs_time_is_the_latest_entry_time_and_never_goes_backwards() {
    let mut db = Db::new();
    assert_eq!(db.store.time_ms(), 0);
    db.set("a", "1");
    assert_eq!(db.store.time_ms(), db.now);
    // An entry of an earlier release, timed by a node whose clock was 6 s behind: applied at
    // the log's time, so its relative expiry counts from there.
    let stamped_behind = KvWrite {
        now_ms: db.now - 6_000,
        op: WriteOp::Set {
            key: b("k"),
            value: b("v"),
            condition: SetCondition::Always,
            ttl: SetTtl::After(1_000),
            get: false,
        },
    };
    assert_eq!(db.store.apply(&stamped_behind), Reply::Ok);
    assert_eq!(db.store.time_ms(), db.now, "time did not go back");
    assert_eq!(db.pttl("k"), Reply::Integer(1_000));
    db.now += 2_000;
    db.set("b", "2");
    assert_eq!(db.store.time_ms(), db.now);
    assert_eq!(db.write(WriteOp::FlushAll), Reply::Ok);
    assert_eq!(db.store.time_ms(), db.now, "FLUSHALL empties the keys, not the log's time");
}

#[test]
fn relative_expiries_count_from_the_entry_time() {
    let mut db = Db::new();
    db.set_with("k", "v", SetCondition::Always, SetTtl::After(500), false);
    assert_eq!(db.pttl("k"), Reply::Integer(500));
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::After(2_000) }), bulk("v"));
    assert_eq!(db.pttl("k"), Reply::Integer(2_000));
    assert_eq!(db.expire_in("k", 0, ExpireCondition::Always), Reply::Integer(1));
    assert_eq!(db.get("k"), Reply::Nil, "an expiry at the entry's time deletes the key");
    db.set("k", "v");
    assert_eq!(db.write(WriteOp::GetEx { key: b("k"), ttl: GetExTtl::At(db.now) }), bulk("v"));
    assert_eq!(db.get("k"), Reply::Nil);
    let far = WriteOp::Set {
        key: b("far"),
        value: b("v"),
        condition: SetCondition::Always,
        ttl: SetTtl::After(u64::MAX),
        get: false,
    };
    assert_eq!(db.write(far), Reply::Ok, "a span past the end of time saturates");
    assert_eq!(db.get("far"), bulk("v"));
}

#[test]
fn newly_expired_names_the_keys_a_read_would_see_expire_past_the_logs_time() {
    let mut db = Db::new();
    let log_time = db.now;
    db.set_with("soon", "v", SetCondition::Always, SetTtl::After(100), false);
    db.set_with("later", "v", SetCondition::Always, SetTtl::After(5_000), false);
    db.set("never", "v");
    let get = |key: &str| KvRead::Get { key: b(key) };
    assert!(db.store.newly_expired(&get("soon"), log_time, 10).is_empty(), "not past the log's time");
    assert!(db.store.newly_expired(&get("soon"), log_time + 100, 10).is_empty(), "alive at its expiry");
    assert_eq!(db.store.newly_expired(&get("soon"), log_time + 101, 10), vec![b("soon")]);
    assert!(db.store.newly_expired(&get("never"), u64::MAX, 10).is_empty());
    let both = KvRead::MGet { keys: vec![b("later"), b("soon"), b("never")] };
    assert_eq!(db.store.newly_expired(&both, log_time + 6_000, 10), vec![b("later"), b("soon")]);
    assert_eq!(db.store.newly_expired(&KvRead::DbSize, log_time + 6_000, 1), vec![b("soon")]);
    // Once an entry at a later time is applied, the log's time covers the expiry.
    db.now += 200;
    db.set("other", "v");
    assert!(db.store.newly_expired(&get("soon"), db.now + 1, 10).is_empty());
}

impl Db {
    /// WATCH: the keys' versions now.
    fn watch(&self, keys: &[&str]) -> Vec<WatchedKey> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|key| b(key)).collect();
        let Reply::Array(versions) = self.read(KvRead::Versions { keys: keys.clone() }) else {
            panic!("versions are an array");
        };
        let version = |reply: &Reply| match reply {
            Reply::Integer(version) => u64::try_from(*version).expect("a version"),
            other => panic!("not a version: {other:?}"),
        };
        keys.into_iter()
            .zip(&versions)
            .map(|(key, reply)| WatchedKey { key, version: version(reply) })
            .collect()
    }

    /// EXEC of `INCR counter` under `watched`: the reply.
    fn exec_watched(&mut self, watched: Vec<WatchedKey>) -> Reply {
        let steps = vec![TxnStep::Write(WriteOp::IncrBy { key: b("counter"), delta: 1 })];
        self.write(WriteOp::Transaction { steps, watched })
    }
}

#[test]
fn a_watched_transaction_runs_while_its_keys_keep_their_versions() {
    let mut db = Db::new();
    db.set("w", "1");
    let watched = db.watch(&["w", "absent"]);
    assert!(watched[0].version >= 1 && watched[1].version == 0, "{watched:?}");
    // Other keys written meanwhile, and reads, do not matter.
    db.set("other", "x");
    assert_eq!(db.exec_watched(watched), Reply::Array(vec![Reply::Integer(1)]));
}

#[test]
fn any_write_to_a_watched_key_makes_exec_answer_nil_and_run_nothing() {
    type Write = Box<dyn Fn(&mut Db)>;
    let writes: Vec<(&str, Write)> = vec![
        ("SET of the same value", Box::new(|db| drop(db.set("w", "1")))),
        ("DEL", Box::new(|db| drop(db.write(WriteOp::Del { keys: vec![b("w")] })))),
        ("EXPIRE", Box::new(|db| drop(db.expire_in("w", 60_000, ExpireCondition::Always)))),
        ("INCR", Box::new(|db| drop(db.incr("w", 1)))),
        ("APPEND", Box::new(|db| drop(db.write(WriteOp::Append { key: b("w"), value: b("x") })))),
        ("FLUSHALL", Box::new(|db| drop(db.write(WriteOp::FlushAll)))),
    ];
    for (name, write) in writes {
        let mut db = Db::new();
        db.set("w", "1");
        let watched = db.watch(&["w"]);
        write(&mut db);
        assert_eq!(db.exec_watched(watched), Reply::NilArray, "{name}");
        assert_eq!(db.get("counter"), Reply::Nil, "{name}: nothing ran");
    }
}

#[test]
fn creating_or_expiring_a_watched_key_breaks_the_watch() {
    let mut db = Db::new();
    let watched = db.watch(&["w"]);
    db.set("w", "new");
    assert_eq!(db.exec_watched(watched), Reply::NilArray, "created after WATCH");

    let mut db = Db::new();
    db.set_with("w", "1", SetCondition::Always, SetTtl::At(db.now + 10), false);
    let watched = db.watch(&["w"]);
    db.now += 11;
    assert_eq!(db.exec_watched(watched), Reply::NilArray, "expired after WATCH (Redis 7)");
}

#[test]
fn changing_a_watched_collection_breaks_the_watch() {
    use super::types::{CollectionWrite, HashWrite};
    let mut db = Db::new();
    let hset = |value: &str| {
        let pairs = vec![(b("f"), b(value))];
        WriteOp::Collection(CollectionWrite::Hash(HashWrite::Set { key: b("h"), pairs, reply_ok: false }))
    };
    db.write(hset("1"));
    let watched = db.watch(&["h"]);
    db.write(hset("2"));
    assert_eq!(db.exec_watched(watched), Reply::NilArray);
}

#[test]
fn expires_counts_the_live_keys_with_an_expiry() {
    let mut db = Db::new();
    db.set("plain", "v");
    db.set_with("soon", "v", SetCondition::Always, SetTtl::At(db.now + 10), false);
    db.set_with("later", "v", SetCondition::Always, SetTtl::At(db.now + 10_000), false);
    assert_eq!(db.read(KvRead::Expires), Reply::Integer(2));
    db.now += 11;
    assert_eq!(db.read(KvRead::Expires), Reply::Integer(1), "an expired key no longer counts");
    assert_eq!(db.read(KvRead::DbSize), Reply::Integer(2));
}
