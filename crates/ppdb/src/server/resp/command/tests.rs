//! Command parsing compared with Redis 7 (texts checked against redis-server 7.0.15).

use bytes::Bytes;

use super::*;
use crate::kv::{ExpireCondition, ExpireTime, GetExTtl, KvWrite, SetCondition, SetTtl, WriteOp};

fn args(line: &str) -> Vec<Bytes> {
    line.split(' ').filter(|a| !a.is_empty()).map(|a| Bytes::from(a.to_owned())).collect()
}

fn parse(line: &str) -> Result<Command, CommandError> {
    Command::parse(&args(line))
}

fn error(line: &str) -> String {
    match parse(line) {
        Ok(command) => panic!("{line:?} parsed as {command:?}"),
        Err(error) => error.to_string(),
    }
}

/// Parses and resolves a write at `now`.
fn write(line: &str, now: u64) -> Result<KvWrite, CommandError> {
    match parse(line)? {
        Command::Write(write) => write.resolve(now),
        other => panic!("{line:?} is not a write: {other:?}"),
    }
}

fn op(line: &str, now: u64) -> WriteOp {
    write(line, now).expect("valid write").op
}

#[test]
fn redis_7_error_texts() {
    let cases = [
        ("foo a b", "ERR unknown command 'foo', with args beginning with: 'a' 'b' "),
        ("foo", "ERR unknown command 'foo', with args beginning with: "),
        ("GET", "ERR wrong number of arguments for 'get' command"),
        ("get a b", "ERR wrong number of arguments for 'get' command"),
        ("ECHO", "ERR wrong number of arguments for 'echo' command"),
        ("PING a b", "ERR wrong number of arguments for 'ping' command"),
        ("MSET a b c", "ERR wrong number of arguments for 'mset' command"),
        ("MSETNX a", "ERR wrong number of arguments for 'msetnx' command"),
        ("SET k v NX XX", "ERR syntax error"),
        ("SET k v XX NX", "ERR syntax error"),
        ("SET k v EX 10 PX 10", "ERR syntax error"),
        ("SET k v KEEPTTL EX 1", "ERR syntax error"),
        ("SET k v EX 1 KEEPTTL", "ERR syntax error"),
        ("SET k v EX", "ERR syntax error"),
        ("SET k v PERSIST", "ERR syntax error"),
        ("SET k v EX abc", "ERR value is not an integer or out of range"),
        ("SET k v EX 0", "ERR invalid expire time in 'set' command"),
        ("SET k v PX -5", "ERR invalid expire time in 'set' command"),
        ("SET k v EX 9223372036854775807", "ERR invalid expire time in 'set' command"),
        ("SET k v EX 0 NX XX", "ERR syntax error"),
        ("GETEX k PERSIST EX 1", "ERR syntax error"),
        ("GETEX k NX", "ERR syntax error"),
        ("GETEX k EX 0", "ERR invalid expire time in 'getex' command"),
        ("SETEX k 0 v", "ERR invalid expire time in 'setex' command"),
        ("PSETEX k -1 v", "ERR invalid expire time in 'psetex' command"),
        ("SETEX k x v", "ERR value is not an integer or out of range"),
        ("INCRBY k 1.5", "ERR value is not an integer or out of range"),
        ("INCRBY k 01", "ERR value is not an integer or out of range"),
        ("DECRBY k -9223372036854775808", "ERR decrement would overflow"),
        ("INCRBYFLOAT k abc", "ERR value is not a valid float"),
        ("INCRBYFLOAT k nan", "ERR value is not a valid float"),
        ("SETRANGE k -1 a", "ERR offset is out of range"),
        ("SETRANGE k abc a", "ERR value is not an integer or out of range"),
        ("GETRANGE k a 1", "ERR value is not an integer or out of range"),
        ("EXPIRE k 10 FOO", "ERR Unsupported option FOO"),
        ("EXPIRE k 10 NX XX", "ERR NX and XX, GT or LT options at the same time are not compatible"),
        ("EXPIRE k 10 NX GT", "ERR NX and XX, GT or LT options at the same time are not compatible"),
        ("EXPIRE k 10 GT LT", "ERR GT and LT options at the same time are not compatible"),
        ("EXPIRE k abc NX XX", "ERR NX and XX, GT or LT options at the same time are not compatible"),
        ("EXPIRE k abc", "ERR value is not an integer or out of range"),
        ("SCAN abc", "ERR invalid cursor"),
        ("SCAN 18446744073709551616", "ERR invalid cursor"),
        ("SCAN 0 COUNT 0", "ERR syntax error"),
        ("SCAN 0 COUNT x", "ERR value is not an integer or out of range"),
        ("SCAN 0 MATCH", "ERR syntax error"),
        ("SCAN 0 FOO bar", "ERR syntax error"),
        ("FLUSHALL a b", "ERR syntax error"),
        ("FLUSHALL a", "ERR syntax error"),
        ("HELLO 4", "NOPROTO unsupported protocol version"),
        ("HELLO abc", "ERR Protocol version is not an integer or out of range"),
        ("HELLO 3 FOO", "ERR Syntax error in HELLO option 'FOO'"),
        ("HELLO 2 SETNAME", "ERR Syntax error in HELLO option 'SETNAME'"),
        ("CLIENT", "ERR wrong number of arguments for 'client' command"),
        ("CLIENT FOO", "ERR unknown subcommand 'FOO'. Try CLIENT HELP."),
        ("CLIENT SETNAME", "ERR wrong number of arguments for 'client|setname' command"),
        ("COMMAND FOO", "ERR unknown subcommand 'FOO'. Try COMMAND HELP."),
        ("COMMAND COUNT x", "ERR wrong number of arguments for 'command|count' command"),
        ("COMMAND LIST x", "ERR syntax error"),
        ("SELECT x", "ERR value is not an integer or out of range"),
        ("SELECT 1", "ERR DB index is out of range"),
        ("AUTH a b c", "ERR syntax error"),
    ];
    for (line, expected) in cases {
        assert_eq!(error(line), expected, "{line}");
    }
}

#[test]
fn unknown_command_quotes_at_most_128_bytes_of_arguments() {
    let long = "x".repeat(200);
    let text = error(&format!("nope {long} more"));
    assert_eq!(text, format!("ERR unknown command 'nope', with args beginning with: '{}' ", "x".repeat(128)));
    let mut with_newline = args("nope");
    with_newline.push(Bytes::from_static(b"a\r\nb"));
    let frame = Frame::from(&Command::parse(&with_newline).expect_err("unknown"));
    assert_eq!(frame, Frame::Error("ERR unknown command 'nope', with args beginning with: 'a  b' ".into()));
}

#[test]
fn classification_and_keys() {
    let class = |line: &str| parse(line).expect("valid").class();
    assert_eq!(class("GET k"), CommandClass::Read);
    assert_eq!(class("set k v"), CommandClass::Write);
    assert_eq!(class("PING"), CommandClass::Connection);
    assert_eq!(class("DBSIZE"), CommandClass::Read);
    assert_eq!(class("FLUSHDB ASYNC"), CommandClass::Write);
    assert_eq!(class("EXPIRE k 10"), CommandClass::Write);
    let keys = |line: &str| -> Vec<Vec<u8>> {
        parse(line).expect("valid").keys().into_iter().map(<[u8]>::to_vec).collect()
    };
    assert_eq!(keys("MSET a 1 b 2"), vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(keys("DEL x y"), vec![b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(keys("SETEX k 10 v"), vec![b"k".to_vec()]);
    assert_eq!(keys("MGET a b"), vec![b"a".to_vec(), b"b".to_vec()]);
    assert!(keys("SCAN 0").is_empty());
    assert!(keys("ECHO hi").is_empty());
}

#[test]
fn set_options_resolve_to_milliseconds_absolute_or_after_the_entry_time() {
    let now = 1_700_000_000_000;
    let set =
        |ttl, condition, get| WriteOp::Set { key: b"k".to_vec(), value: b"v".to_vec(), condition, ttl, get };
    assert_eq!(op("SET k v", now), set(SetTtl::Clear, SetCondition::Always, false));
    assert_eq!(op("set k v ex 10 nx", now), set(SetTtl::After(10_000), SetCondition::IfAbsent, false));
    assert_eq!(op("SET k v PX 5 XX GET", now), set(SetTtl::After(5), SetCondition::IfPresent, true));
    assert_eq!(
        op("SET k v EXAT 2000000000", now),
        set(SetTtl::At(2_000_000_000_000), SetCondition::Always, false)
    );
    assert_eq!(op("SET k v PXAT 1", now), set(SetTtl::At(1), SetCondition::Always, false));
    assert_eq!(op("SET k v KEEPTTL", now), set(SetTtl::Keep, SetCondition::Always, false));
    assert_eq!(op("SET k v EX 10 EX 20", now), set(SetTtl::After(20_000), SetCondition::Always, false));
    assert_eq!(op("SET k v NX NX GET GET", now), set(SetTtl::Clear, SetCondition::IfAbsent, true));
    assert_eq!(op("SETEX k 3 v", now), set(SetTtl::After(3_000), SetCondition::Always, false));
    assert_eq!(op("PSETEX k 3 v", now), set(SetTtl::After(3), SetCondition::Always, false));
    assert_eq!(op("GETSET k v", now), set(SetTtl::Clear, SetCondition::Always, true));
    // Overflow only known once the clock is added.
    let near_max = i64::MAX - 10;
    assert_eq!(
        write(&format!("SET k v PX {near_max}"), now).map(|w| w.op),
        Err(CommandError::InvalidExpireTime { command: "set" })
    );
    assert_eq!(write("SET k v EX 10", now).map(|w| w.now_ms), Ok(0), "the shard's leader stamps the time");
}

#[test]
fn getex_and_expire_resolve() {
    let now = 10_000;
    let getex = |ttl| WriteOp::GetEx { key: b"k".to_vec(), ttl };
    assert_eq!(op("GETEX k", now), getex(GetExTtl::Unchanged));
    assert_eq!(op("GETEX k PERSIST", now), getex(GetExTtl::Persist));
    assert_eq!(op("GETEX k EX 2", now), getex(GetExTtl::After(2_000)));
    assert_eq!(op("GETEX k PXAT 99", now), getex(GetExTtl::At(99)));
    let expire = |when, condition| WriteOp::Expire { key: b"k".to_vec(), when, condition };
    let after = ExpireTime::After;
    assert_eq!(op("EXPIRE k 10", now), expire(after(10_000), ExpireCondition::Always));
    assert_eq!(op("EXPIRE k -10", now), expire(after(-10_000), ExpireCondition::Always));
    assert_eq!(op("PEXPIRE k 5 gt", now), expire(after(5), ExpireCondition::IfLater));
    let at = ExpireTime::At;
    assert_eq!(op("EXPIREAT k 100 XX LT", now), expire(at(100_000), ExpireCondition::IfTtlAndEarlier));
    assert_eq!(op("PEXPIREAT k -3 xx gt", now), expire(at(-3), ExpireCondition::IfTtlAndLater));
    assert_eq!(op("EXPIRE k 1 NX", now), expire(after(1_000), ExpireCondition::IfNoTtl));
    assert_eq!(
        write("EXPIRE k 9223372036854775807", now).map(|w| w.op),
        Err(CommandError::InvalidExpireTime { command: "expire" })
    );
    assert_eq!(
        write("PEXPIRE k 9223372036854775807", now).map(|w| w.op),
        Err(CommandError::InvalidExpireTime { command: "pexpire" })
    );
}

/// `check_times` refuses exactly what `resolve` refuses, so an overflowing expiry is answered
/// with Redis's error before the command is routed (it once reached clients as a STATE error).
#[test]
fn checking_times_refuses_what_resolving_refuses() {
    let now = 1_700_000_000_000;
    for line in [
        "SET k v PX 9223372036854775807",
        "SET k v PXAT 9223372036854775807",
        "SETEX k 9223372036854775807 v",
        "PSETEX k 9223372036854775807 v",
        "GETEX k PX 9223372036854775807",
        "GETEX k PXAT 9223372036854775807",
        "EXPIRE k 9223372036854775807",
        "EXPIRE k -9223372036854775808",
        "PEXPIRE k 9223372036854775807",
        "EXPIREAT k 9223372036854775807",
        "PEXPIREAT k 9223372036854775807",
        "SET k v EX 10",
        "GETEX k PERSIST",
        "INCR k",
    ] {
        let Ok(Command::Write(command)) = parse(line) else { panic!("{line:?} is not a write") };
        let resolved = command.resolve(now).map(drop);
        assert_eq!(command.check_times(now), resolved, "{line}");
    }
    let Ok(Command::Write(command)) = parse("PEXPIRE k 9223372036854775807") else { unreachable!() };
    assert_eq!(command.check_times(now), Err(CommandError::InvalidExpireTime { command: "pexpire" }));
}

#[test]
fn other_commands_parse() {
    let now = 0;
    assert_eq!(op("DECRBY k 5", now), WriteOp::IncrBy { key: b"k".to_vec(), delta: -5 });
    assert_eq!(op("DECR k", now), WriteOp::IncrBy { key: b"k".to_vec(), delta: -1 });
    assert_eq!(op("INCRBYFLOAT k 3.0e3", now), WriteOp::IncrByFloat { key: b"k".to_vec(), delta: 3000.0 });
    assert_eq!(op("UNLINK a b", now), WriteOp::Del { keys: vec![b"a".to_vec(), b"b".to_vec()] });
    assert_eq!(op("FLUSHDB", now), WriteOp::FlushAll);
    assert_eq!(
        op("SETRANGE k 5 x", now),
        WriteOp::SetRange { key: b"k".to_vec(), offset: 5, value: b"x".to_vec() }
    );
    // Past the size limit: refused when applied, after the key's type (kv/tests.rs).
    assert_eq!(
        op("SETRANGE k 9223372036854775807 x", now),
        WriteOp::SetRange { key: b"k".to_vec(), offset: 9_223_372_036_854_775_807, value: b"x".to_vec() }
    );
    assert_eq!(
        parse("SCAN 7 MATCH a* COUNT 100 TYPE string"),
        Ok(Command::Read(KvRead::Scan {
            cursor: 7,
            pattern: Some(b"a*".to_vec()),
            count: 100,
            type_name: Some(b"string".to_vec())
        }))
    );
    assert_eq!(
        parse("substr k 0 -1"),
        Ok(Command::Read(KvRead::GetRange { key: b"k".to_vec(), start: 0, end: -1 }))
    );
    assert_eq!(parse("ping"), Ok(Command::Ping(None)));
    assert_eq!(parse("SELECT 0"), Ok(Command::Select));
    assert_eq!(parse("TIME"), Ok(Command::Time));
    assert_eq!(
        parse("RENAMENX a b"),
        Ok(Command::Write(WriteCommand::Ready(WriteOp::Rename {
            from: b"a".to_vec(),
            to: b"b".to_vec(),
            if_new: true
        })))
    );
    assert_eq!(
        parse("copy a b replace db 0"),
        Ok(Command::Write(WriteCommand::Ready(WriteOp::Copy {
            from: b"a".to_vec(),
            to: b"b".to_vec(),
            replace: true
        })))
    );
    for (line, error) in [
        ("COPY a a", "ERR source and destination objects are the same"),
        ("COPY a b DB 2", "ERR DB index is out of range"),
        ("COPY a b DB", "ERR syntax error"),
        ("COPY a b DB x", "ERR value is not an integer or out of range"),
        ("COPY a b NOW", "ERR syntax error"),
    ] {
        assert_eq!(parse(line).map_err(|e| e.to_string()), Err(error.to_string()), "{line}");
    }
    assert_eq!(
        parse("config get save maxmemory*"),
        Ok(Command::ConfigGet(vec![Bytes::from("save"), Bytes::from("maxmemory*")]))
    );
    assert_eq!(
        parse("CONFIG GET").map_err(|e| e.to_string()),
        Err("ERR wrong number of arguments for 'config|get' command".to_string())
    );
    assert_eq!(
        parse("CONFIG SET maxmemory 1mb"),
        Ok(Command::ConfigSet(vec![(Bytes::from("maxmemory"), Bytes::from("1mb"))]))
    );
    for odd in ["CONFIG SET", "CONFIG SET maxmemory", "CONFIG SET maxmemory 1 maxmemory-policy"] {
        assert_eq!(
            parse(odd).map_err(|e| e.to_string()),
            Err("ERR wrong number of arguments for 'config|set' command".to_string()),
            "{odd}"
        );
    }
    assert_eq!(
        parse("CONFIG REWRITE").map_err(|e| e.to_string()),
        Err("ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.".to_string())
    );
    assert_eq!(parse("COMMAND DOCS"), Ok(Command::Command(CommandQuery::Docs(vec![]))));
    assert_eq!(
        parse("HELLO 3 AUTH default secret SETNAME app"),
        Ok(Command::Hello(Hello {
            version: Some(ProtocolVersion::Resp3),
            auth: Some((Bytes::from("default"), Bytes::from("secret"))),
            client_name: Some(Bytes::from("app")),
        }))
    );
    assert_eq!(
        parse("CLIENT SETINFO LIB-NAME redis-py"),
        Ok(Command::Client(ClientCommand::SetInfo { attribute: "lib-name", value: Bytes::from("redis-py") }))
    );
    let bad_name = vec![Bytes::from("CLIENT"), Bytes::from("SETNAME"), Bytes::from("a b")];
    assert_eq!(Command::parse(&bad_name), Err(CommandError::InvalidClientName));
    assert_eq!(
        CommandError::InvalidClientName.to_string(),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        Command::parse(&[]).map_err(|e| e.to_string()),
        Err("ERR unknown command '', with args beginning with: ".into())
    );
}

use crate::kv::KvRead;
use crate::server::resp::frame::{Frame, ProtocolVersion};

/// Feeds `lines` to a transaction begun by MULTI; the reply text to each (`QUEUED`, an
/// error, or `run now` for commands that are not queued).
fn admit_all(transaction: &mut Transaction, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|line| match transaction.admit(&args(line)) {
            Admission::Queued => "QUEUED".to_owned(),
            Admission::Refused(error) => error.to_string(),
            Admission::Immediate(command) => format!("run now: {command:?}"),
            Admission::Discarded(error) => format!("discarded: {error}"),
        })
        .collect()
}

#[test]
fn multi_queues_valid_commands_and_option_errors_answer_at_exec() {
    let mut txn = Transaction::default();
    let replies = admit_all(&mut txn, &["SET k v", "INCR n", "SET k v NX XX", "PING", "UNWATCH", "GET k"]);
    assert_eq!(replies, ["QUEUED"; 6]);
    let queued = txn.into_queued().expect("not aborted");
    assert_eq!(queued.len(), 6);
    assert_eq!(queued[2], transaction::Queued::Refused(CommandError::Syntax));
    assert!(matches!(&queued[0], transaction::Queued::Command(Command::Write(_))));
    assert_eq!(queued[3], transaction::Queued::Command(Command::Ping(None)));
    assert!(matches!(&queued[5], transaction::Queued::Command(Command::Read(_))));
}

#[test]
fn an_unknown_command_or_a_wrong_arity_aborts_the_transaction() {
    for bad in ["FOO a", "GET", "CLIENT NOSUCH", "DISCARD now"] {
        let mut txn = Transaction::default();
        let replies = admit_all(&mut txn, &["SET k v", bad, "GET k"]);
        assert_eq!(replies[0], "QUEUED");
        assert!(replies[1].starts_with("ERR "), "{bad}: {}", replies[1]);
        assert_eq!(replies[2], "QUEUED", "later commands are still queued");
        assert_eq!(
            txn.into_queued().unwrap_err().to_string(),
            "EXECABORT Transaction discarded because of previous errors."
        );
    }
}

/// Redis answers EXEC with arguments `EXECABORT` outside MULTI too; other refusals keep their
/// error.
#[test]
fn exec_with_arguments_outside_multi_is_execabort() {
    let refused = |line: &str| refused_outside_multi(parse(line).unwrap_err());
    assert_eq!(
        refused("EXEC now"),
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
    );
    assert_eq!(refused("DISCARD now"), "ERR wrong number of arguments for 'discard' command");
}

/// A wrong number of arguments that the command finds itself, after the table's arity check,
/// is queued and answered at EXEC, as Redis finds it when the command runs; the table's (and a
/// subcommand's) abort the transaction.
#[test]
fn an_arity_error_found_by_the_command_is_answered_at_exec() {
    let mut txn = Transaction::default();
    let replies = admit_all(&mut txn, &["HSET h f v g", "MSET a 1 b", "LPOP k 1 2", "PING a b"]);
    assert_eq!(replies, ["QUEUED"; 4]);
    let queued = txn.into_queued().expect("not aborted");
    let arity = |command| transaction::Queued::Refused(CommandError::WrongArity { command });
    assert_eq!(queued, [arity("hset"), arity("mset"), arity("lpop"), arity("ping")]);
    for table_arity in ["HSET h f", "CONFIG GET"] {
        let mut txn = Transaction::default();
        assert!(admit_all(&mut txn, &[table_arity])[0].starts_with("ERR wrong number"), "{table_arity}");
        assert_eq!(txn.into_queued(), Err(TransactionError::ExecAbort), "{table_arity}");
    }
}

#[test]
fn exec_with_arguments_drops_the_transaction() {
    let mut txn = Transaction::default();
    let replies = admit_all(&mut txn, &["SET k v", "EXEC now"]);
    assert_eq!(
        replies[1],
        "discarded: EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
    );
}

#[test]
fn nested_multi_and_watch_are_refused_without_aborting() {
    let mut txn = Transaction::default();
    let replies = admit_all(&mut txn, &["MULTI", "WATCH k", "SET k v"]);
    assert_eq!(
        replies,
        ["ERR MULTI calls can not be nested", "ERR WATCH inside MULTI is not allowed", "QUEUED"]
    );
    assert_eq!(txn.into_queued().map(|q| q.len()), Ok(1));
}

#[test]
fn exec_discard_quit_and_reset_run_at_once() {
    let mut txn = Transaction::default();
    let replies = admit_all(&mut txn, &["exec", "DISCARD", "QUIT", "RESET"]);
    assert_eq!(replies, ["run now: Exec", "run now: Discard", "run now: Quit", "run now: Reset"]);
    assert_eq!(txn.into_queued().map(|q| q.len()), Ok(0));
}

#[test]
fn transaction_error_texts_are_redis_7s() {
    let cases = [
        (TransactionError::ExecWithoutMulti, "ERR EXEC without MULTI"),
        (TransactionError::DiscardWithoutMulti, "ERR DISCARD without MULTI"),
        (TransactionError::NestedMulti, "ERR MULTI calls can not be nested"),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
    let cross = TransactionError::CrossShard { shards: vec![2, 7] }.to_string();
    assert!(cross.starts_with("CROSSSLOT Keys in request don't hash to the same slot"), "{cross}");
    assert!(cross.contains("shards 2, 7"), "{cross}");
}

#[test]
fn the_queue_is_bounded_and_overflow_aborts() {
    let mut txn = Transaction::default();
    for _ in 0..transaction::QUEUED_COMMANDS_MAX {
        assert_eq!(txn.admit(&args("INCR n")), Admission::Queued);
    }
    assert_eq!(txn.admit(&args("INCR n")), Admission::Refused(TransactionError::TooLarge));
    assert_eq!(txn.into_queued(), Err(TransactionError::ExecAbort));

    let mut txn = Transaction::default();
    let big = Bytes::from(vec![b'x'; transaction::QUEUED_BYTES_MAX / 2]);
    let set = |key: &str| vec![Bytes::from("SET"), Bytes::from(key.to_owned()), big.clone()];
    assert_eq!(txn.admit(&set("a")), Admission::Queued);
    assert_eq!(txn.admit(&set("b")), Admission::Refused(TransactionError::TooLarge));
}
