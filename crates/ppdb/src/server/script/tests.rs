//! Scripts run by a shard's engine against a key space: replies, errors, budget, determinism.

use super::engine::{ScriptEngine, SCRIPT_INSTRUCTIONS_MAX};
use crate::kv::{KvRead, KvStore, Reply, ScriptCall};
use crate::node::{KeyRouting, Router, ShardId};

/// A shard's key space and engine, applying script entries one after the other.
#[derive(Default)]
struct Shard {
    store: KvStore,
    engine: ScriptEngine,
    index: u64,
}

impl Shard {
    fn eval_on(
        &mut self,
        body: &str,
        keys: &[&str],
        args: &[&str],
        read_only: bool,
        router: Router,
    ) -> Reply {
        let call = ScriptCall {
            body: body.as_bytes().to_vec(),
            function: None,
            access: None,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            read_only,
            shard: 1,
            shards: router.shard_count(),
            hash_slots: router.routing() == KeyRouting::HashSlots,
        };
        self.apply(&call)
    }

    fn apply(&mut self, call: &ScriptCall) -> Reply {
        self.index += 1;
        let now_ms = self.store.begin_entry(self.index, 1_700_000_000_000 + self.index);
        self.engine.run(&mut self.store, call, self.index, now_ms)
    }

    /// FCALL of `function` of `library`, as its entry carries it.
    fn fcall(
        &mut self,
        library: &str,
        function: &str,
        keys: &[&str],
        args: &[&str],
        read_only: bool,
    ) -> Reply {
        let call = ScriptCall {
            body: library.as_bytes().to_vec(),
            function: Some(function.as_bytes().to_vec()),
            access: None,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            read_only,
            shard: 1,
            shards: 1,
            hash_slots: true,
        };
        self.apply(&call)
    }

    fn eval(&mut self, body: &str, keys: &[&str], args: &[&str]) -> Reply {
        self.eval_on(body, keys, args, false, Router::new(KeyRouting::HashSlots, 1))
    }

    fn get(&self, key: &str) -> Reply {
        self.store.read(&KvRead::Get { key: key.as_bytes().to_vec() }, self.store.time_ms())
    }
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

fn error(text: &str, body: &str, line: u32) -> Reply {
    let sha = super::cache::script_sha(body.as_bytes());
    Reply::ErrorText(format!("{text} script: {sha}, on @user_script:{line}."))
}

#[test]
fn a_script_reads_and_writes_its_keys_through_redis_call() {
    let mut shard = Shard::default();
    let body = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCRBY', KEYS[1], ARGV[2])";
    assert_eq!(shard.eval(body, &["n"], &["40", "2"]), Reply::Integer(42));
    assert_eq!(shard.get("n"), bulk("42"));
    assert_eq!(shard.eval("return redis.call('GET', KEYS[1])", &["n"], &[]), bulk("42"));
    assert_eq!(shard.eval("return redis.call('GET', 'missing')", &[], &[]), Reply::Nil);
    assert_eq!(shard.eval("return redis.call('SET', 'f', 5.5)", &[], &[]), Reply::StatusText("OK".into()));
    assert_eq!(shard.get("f"), bulk("5.5"), "numbers are sent as Lua writes them");
    assert_eq!(
        shard.eval("return {KEYS[1], ARGV[1], #KEYS}", &["k"], &["a"]),
        Reply::Array(vec![bulk("k"), bulk("a"), Reply::Integer(1)])
    );
}

#[test]
fn errors_read_as_redis_7_words_them() {
    let mut shard = Shard::default();
    shard.eval("redis.call('SET', 's', 'abc')", &[], &[]);
    let body = "return redis.call('INCR', 's')";
    assert_eq!(shard.eval(body, &[], &[]), error("ERR value is not an integer or out of range", body, 1));
    let caught = "local e = redis.pcall('INCR', 's') return e";
    assert_eq!(
        shard.eval(caught, &[], &[]),
        Reply::ErrorText("ERR value is not an integer or out of range".into())
    );
    let body = "\nreturn foo";
    let text = "ERR user_script:2: Script attempted to access nonexistent global variable 'foo'";
    assert_eq!(shard.eval(body, &[], &[]), error(text, body, 2));
    let body = "x = 1";
    assert_eq!(
        shard.eval(body, &[], &[]),
        error("ERR user_script:1: Attempt to modify a readonly table", body, 1)
    );
    let body = "string.x = 1";
    assert_eq!(
        shard.eval(body, &[], &[]),
        error("ERR user_script:1: Attempt to modify a readonly table", body, 1)
    );
    let body = "error({err='X boom'})";
    assert_eq!(shard.eval(body, &[], &[]), error("X boom", body, 1));
    for (body, text) in [
        ("return redis.call('BLPOP', 'l', 0)", "ERR This Redis command is not allowed from script"),
        ("return redis.call('nosuch')", "ERR Unknown Redis command called from script"),
        ("return redis.call()", "ERR Please specify at least one argument for this redis lib call"),
        ("return redis.call('GET', {})", "ERR Lua redis lib command arguments must be strings or integers"),
        ("return redis.call('GET', 'a', 'b')", "ERR Wrong number of args calling Redis command from script"),
        ("return redis.call('EVAL', 'return 1', 0)", "ERR This Redis command is not allowed from script"),
    ] {
        assert_eq!(shard.eval(body, &[], &[]), error(text, body, 1), "{body}");
    }
    assert_eq!(
        shard.eval("return +", &[], &[]),
        Reply::ErrorText(
            "ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'".into()
        )
    );
}

#[test]
fn a_script_failing_half_way_keeps_its_earlier_writes() {
    let mut shard = Shard::default();
    let body = "redis.call('SET', 'a', '1') redis.call('SET', 's', 'x') redis.call('INCR', 's') redis.call('SET', 'b', '2')";
    assert!(matches!(shard.eval(body, &[], &[]), Reply::ErrorText(_)));
    assert_eq!((shard.get("a"), shard.get("s"), shard.get("b")), (bulk("1"), bulk("x"), Reply::Nil));
}

#[test]
fn an_endless_script_stops_at_its_budget_and_even_pcall_cannot_keep_it_going() {
    for body in ["while true do end", "while true do pcall(function() while true do end end) end"] {
        let mut shard = Shard::default();
        let reply = shard.eval(&format!("redis.call('SET', 'before', '1')\n{body}"), &[], &[]);
        let Reply::ErrorText(text) = reply else { panic!("{body}: {reply:?}") };
        let expected = format!(
            "ERR Script exceeded its instruction budget of {SCRIPT_INSTRUCTIONS_MAX} instructions script:"
        );
        assert!(text.starts_with(&expected), "{text}");
        assert!(text.ends_with("on @user_script:2."), "{text}");
        assert_eq!(shard.get("before"), bulk("1"), "no rollback");
        assert_eq!(shard.eval("return 1", &[], &[]), Reply::Integer(1), "the next script runs");
    }
}

#[test]
fn the_budget_stops_a_script_at_the_same_instruction_on_every_replica() {
    // A counter written on every turn shows where the script stopped.
    let body = "local i = 0 while true do i = i + 1 redis.call('SET', 'i', i) end";
    let (mut a, mut b) = (Shard::default(), Shard::default());
    b.eval("return redis.call('SET', 'warm', 'up')", &[], &[]);
    b.store = KvStore::default();
    b.index = 0;
    assert_eq!(a.eval(body, &[], &[]), b.eval(body, &[], &[]));
    assert_eq!(a.get("i"), b.get("i"));
    assert!(matches!(a.get("i"), Reply::Bulk(n) if n.len() > 3), "it ran a while");
}

#[test]
fn replicas_with_different_histories_run_the_same_entries_alike() {
    let scripts = [
        ("local t = {} for i = 1, 5 do t[i] = math.random(1000) end return t", vec![]),
        ("return redis.call('TIME')", vec![]),
        ("table.insert(string, 'leak') return {pcall(rawset, _G, 'y', 1)}", vec![]),
        ("return #string", vec![]),
        ("redis.call('SET', KEYS[1], cjson.encode({b = 1, a = {1, 2}})) return cjson.decode(redis.call('GET', KEYS[1])).a[2]", vec!["j"]),
        ("return redis.call('GET', KEYS[1])", vec!["j"]),
    ];
    // `b` ran other scripts first, `a` starts from a fresh Lua state, as a restarted replica.
    let (mut a, mut b) = (Shard::default(), Shard::default());
    b.eval("local x = {} for i = 1, 100 do x[i] = math.random() end return #x", &[], &[]);
    b.store = KvStore::default();
    b.index = 0;
    for (body, keys) in &scripts {
        assert_eq!(a.eval(body, keys, &[]), b.eval(body, keys, &[]), "{body}");
    }
    assert_eq!(a.store, b.store);
    assert_eq!(a.get("j"), bulk(r#"{"a":[1,2],"b":1}"#));
    assert_eq!(a.eval("return #string", &[], &[]), Reply::Integer(0), "a raw write is swept after the run");
}

#[test]
fn read_only_scripts_and_keys_of_other_shards_are_refused() {
    let mut shard = Shard::default();
    let body = "return redis.call('SET', 'a', 'b')";
    let one = Router::new(KeyRouting::HashSlots, 1);
    let refused = shard.eval_on(body, &[], &[], true, one);
    assert_eq!(refused, error("ERR Write commands are not allowed from read-only scripts.", body, 1));
    assert_eq!(shard.eval_on("return redis.call('GET', 'a')", &[], &[], true, one), Reply::Nil);
    // Entries say how their cluster routes keys: those written before hash slots by crc32c.
    for routing in [KeyRouting::HashSlots, KeyRouting::Crc32cModulo] {
        let two = Router::new(routing, 2);
        let elsewhere =
            (0..).map(|i| format!("k{i}")).find(|k| two.shard_of(k.as_bytes()) == ShardId(2)).unwrap();
        let here = (0..).map(|i| format!("k{i}")).find(|k| two.shard_of(k.as_bytes()) == ShardId(1)).unwrap();
        let body = format!("return redis.call('GET', '{elsewhere}')");
        let refused = shard.eval_on(&body, &[], &[], false, two);
        assert_eq!(
            refused,
            error("ERR Script attempted to access a non local key in a cluster node", &body, 1)
        );
        let body = format!("return redis.call('GET', '{here}')");
        assert_eq!(shard.eval_on(&body, &[], &[], false, two), Reply::Nil, "{routing:?}: {here} is local");
    }
}

#[test]
fn the_redis_library_answers_as_redis() {
    let mut shard = Shard::default();
    assert_eq!(
        shard.eval("return redis.sha1hex('')", &[], &[]),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(shard.eval("return redis.error_reply('MY err')", &[], &[]), Reply::ErrorText("MY err".into()));
    assert_eq!(shard.eval("return redis.status_reply('FINE')", &[], &[]), Reply::StatusText("FINE".into()));
    assert_eq!(shard.eval("redis.log(redis.LOG_WARNING, 'hello') return 1", &[], &[]), Reply::Integer(1));
    assert_eq!(shard.eval("return loadstring('return 1 + 1')()", &[], &[]), Reply::Integer(2));
    let binary = "return loadstring(string.dump(function() return 1 end))";
    assert_eq!(shard.eval(binary, &[], &[]), Reply::Nil, "bytecode is refused");
    assert_eq!(
        shard.eval("return type(os)", &[], &[]),
        error(
            "ERR user_script:1: Script attempted to access nonexistent global variable 'os'",
            "return type(os)",
            1
        )
    );
}

const LIBRARY: &str = "#!lua name=lib\n\
    local calls = 0\n\
    redis.register_function('count', function(keys, args) calls = calls + 1 redis.call('SET', keys[1], args[1]) return calls end)\n\
    redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n\
    redis.register_function('write_anyway', function(keys) return redis.call('SET', keys[1], 'x') end)\n\
    redis.register_function('fails', function(keys) return KEYS end)";

#[test]
fn a_function_call_loads_its_library_afresh_and_calls_the_function_with_keys_and_args() {
    let mut shard = Shard::default();
    assert_eq!(shard.fcall(LIBRARY, "count", &["k"], &["v"], false), Reply::Integer(1));
    assert_eq!(
        shard.fcall(LIBRARY, "count", &["k"], &["w"], false),
        Reply::Integer(1),
        "no state outlives a call"
    );
    assert_eq!(shard.get("k"), bulk("w"));
    assert_eq!(shard.fcall(LIBRARY, "peek", &["k"], &[], false), bulk("w"));
    let refused = Reply::ErrorText(
        "ERR Write commands are not allowed from read-only scripts. script: write_anyway, on @user_function:5.".into(),
    );
    assert_eq!(shard.fcall(LIBRARY, "write_anyway", &["k"], &[], true), refused);
    assert_eq!(
        shard.fcall(LIBRARY, "fails", &[], &[], false),
        Reply::ErrorText(
            "ERR user_function:6: Script attempted to access nonexistent global variable 'KEYS' script: fails, on @user_function:6."
                .into()
        )
    );
    assert_eq!(
        shard.fcall(LIBRARY, "nosuch", &[], &[], false),
        Reply::ErrorText("ERR Function not found".into())
    );
    assert_eq!(
        shard.eval("return redis.call('GET', 'k')", &[], &[]),
        bulk("w"),
        "scripts run after functions"
    );
}

#[test]
fn a_no_writes_function_cannot_write_whatever_the_entry_says() {
    let library = "#!lua name=ro\nredis.register_function{function_name='w', callback=function(keys) return redis.call('SET', keys[1], 'x') end, flags={'no-writes'}}";
    let mut shard = Shard::default();
    let refused = shard.fcall(library, "w", &["k"], &[], false);
    assert!(
        matches!(&refused, Reply::ErrorText(text) if text.starts_with("ERR Write commands are not allowed")),
        "{refused:?}"
    );
    assert_eq!(shard.get("k"), Reply::Nil);
}

#[test]
fn a_restricted_users_script_is_held_to_its_rules() {
    let mut shard = Shard::default();
    let rules = ["on", "~app:*", "+@all", "-set"].iter().map(|r| r.as_bytes().to_vec()).collect();
    let call = |body: &str| ScriptCall {
        body: body.as_bytes().to_vec(),
        function: None,
        access: Some(crate::kv::ScriptAccess { user: b"app".to_vec(), rules: Vec::clone(&rules) }),
        keys: Vec::new(),
        args: Vec::new(),
        read_only: false,
        shard: 1,
        shards: 1,
        hash_slots: true,
    };
    let body = "return redis.call('SET', 'app:1', 'x')";
    assert_eq!(
        shard.apply(&call(body)),
        error("ERR ACL failure in script: User app has no permissions to run the 'set' command", body, 1)
    );
    let body = "return redis.pcall('GET', 'other')";
    assert_eq!(
        shard.apply(&call(body)),
        Reply::ErrorText("ERR ACL failure in script: No permissions to access a key".into())
    );
    assert_eq!(shard.apply(&call("return redis.call('INCR', 'app:n')")), Reply::Integer(1));
    assert_eq!(
        shard.eval("return redis.call('SET', 'app:1', 'x')", &[], &[]),
        Reply::StatusText("OK".into()),
        "an unrestricted call"
    );
}
