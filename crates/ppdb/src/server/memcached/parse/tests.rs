//! The parser against memcached 1.6's answers to the same lines (observed on memcached 1.6.18).

use super::*;
use proptest::prelude::*;

const MAX: usize = 1024;

fn request(input: &str) -> Request {
    match parse(input.as_bytes(), MAX) {
        Parsed::Request(request, consumed) => {
            assert_eq!(consumed, input.len(), "{input:?} taken whole");
            request
        }
        other => panic!("{input:?}: {other:?}"),
    }
}

/// The reply to a refused `input` and the bytes dropped.
fn refusal(input: &str) -> (Option<String>, usize, bool) {
    match parse(input.as_bytes(), MAX) {
        Parsed::Refused { reply, consumed, close } => (reply, consumed, close),
        other => panic!("{input:?}: {other:?}"),
    }
}

fn said(input: &str) -> String {
    refusal(input).0.unwrap_or_else(|| "(nothing)".into())
}

#[test]
fn storage_commands_carry_their_data_block() {
    assert_eq!(
        request("set k 5 10 3\r\nabc\r\n"),
        Request::Store {
            mode: StoreMode::Set,
            key: b"k".to_vec(),
            flags: 5,
            exptime: 10,
            value: b"abc".to_vec(),
            cas: None,
            noreply: false
        }
    );
    assert!(matches!(
        request("cas k 0 -1 1 77 noreply\r\nx\r\n"),
        Request::Store { cas: Some(77), noreply: true, exptime: -1, .. }
    ));
    assert!(matches!(request("prepend k 0 0 0\n\r\n"), Request::Store { mode: StoreMode::Prepend, .. }));
    // Flags beyond 32 bits are kept modulo 2^32, as memcached 1.6 keeps them.
    assert!(matches!(request("set k 4294967297 0 1\r\nx\r\n"), Request::Store { flags: 1, .. }));
    assert_eq!(parse(b"set k 0 0 3\r\nab", MAX), Parsed::Incomplete);
    assert_eq!(parse(b"set k 0 0", MAX), Parsed::Incomplete);
}

#[test]
fn bad_storage_lines_are_answered_as_memcached_answers_them() {
    assert_eq!(said("set k 0 0\r\n"), "ERROR");
    assert_eq!(said("cas k 0 0 1\r\n"), "ERROR");
    assert_eq!(refusal("set k 0 0 abc\r\n"), (Some(BAD_FORMAT.into()), 15, false), "the line only");
    assert_eq!(said("set k -1 0 1\r\n"), BAD_FORMAT);
    assert_eq!(said("set k 0 0 -1\r\n"), BAD_FORMAT);
    assert_eq!(said("set k 0 99999999999 1\r\n"), BAD_FORMAT);
    assert_eq!(said(&format!("set {} 0 0 1\r\n", "k".repeat(251))), BAD_FORMAT);
    assert_eq!(said("set k x 0 1 noreply\r\n"), "(nothing)", "noreply silences the error too");
    // A data block of the wrong length: memcached drops the announced length and `\r\n`.
    assert_eq!(refusal("set k 0 0 2\r\nabc\r\n"), (Some("CLIENT_ERROR bad data chunk".into()), 17, false));
    // Too large: refused, and the block skipped as it comes.
    assert_eq!(
        refusal("set k 0 0 2000\r\n"),
        (Some("SERVER_ERROR object too large for cache".into()), 16 + 2002, false)
    );
}

#[test]
fn retrieval_and_the_one_line_commands() {
    let get = |keys: &[&str], with_cas, touch| Request::Get {
        keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        with_cas,
        touch,
    };
    assert_eq!(request("get a b  c\r\n"), get(&["a", "b", "c"], false, None));
    assert_eq!(request("gets a\n"), get(&["a"], true, None));
    assert_eq!(request("gats -1 a b\r\n"), get(&["a", "b"], true, Some(-1)));
    assert_eq!(said("get\r\n"), "ERROR");
    assert_eq!(said("gat x a\r\n"), BAD_EXPTIME);
    assert_eq!(request("delete k 0 noreply\r\n"), Request::Delete { key: b"k".to_vec(), noreply: true });
    assert_eq!(
        said("delete k 5\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
    );
    assert_eq!(
        request("decr k 7\r\n"),
        Request::Delta { key: b"k".to_vec(), decrement: true, delta: 7, noreply: false }
    );
    assert_eq!(said("incr k -1\r\n"), BAD_DELTA);
    assert_eq!(refusal("incr k abc noreply\r\n").0, None, "a command's error is silent under noreply");
    assert_eq!(said("incr\r\n"), "ERROR");
    assert_eq!(said("foo noreply\r\n"), "ERROR");
    assert_eq!(said("GET k\r\n"), "ERROR", "commands are lower case");
    assert_eq!(said("\r\n"), "ERROR");
    assert_eq!(request("touch k 10\r\n"), Request::Touch { key: b"k".to_vec(), exptime: 10, noreply: false });
    assert_eq!(request("flush_all\r\n"), Request::FlushAll { delay: 0, noreply: false });
    assert_eq!(request("flush_all noreply\r\n"), Request::FlushAll { delay: 0, noreply: true });
    assert_eq!(request("flush_all -1\r\n"), Request::FlushAll { delay: -1, noreply: false });
    assert_eq!(said("flush_all abc\r\n"), BAD_EXPTIME);
    assert_eq!(said("verbosity\r\n"), "ERROR");
    assert_eq!(request("verbosity 1 noreply\r\n"), Request::Verbosity { noreply: true });
    assert_eq!(request("version x\r\n"), Request::Version);
    assert_eq!(request("stats items\r\n"), Request::Stats(StatsGroup::Items));
    assert_eq!(said("stats foo\r\n"), "ERROR");
    assert_eq!(request("quit\r\n"), Request::Quit);
}

#[test]
fn meta_commands_take_their_flags() {
    let Request::MetaGet { key, flags } = request("mg k v t c k Oab q\r\n") else { panic!("mg") };
    assert_eq!(key, b"k");
    assert!(flags.value && flags.quiet);
    assert_eq!(flags.returned, vec![(b't', vec![]), (b'c', vec![]), (b'k', vec![]), (b'O', b"ab".to_vec())]);
    assert_eq!(said("mg k zz\r\n"), BAD_FLAG);
    assert_eq!(said("mg\r\n"), "ERROR");
    let Request::MetaSet { value, flags, .. } = request("ms k 2 T5 F3 C9 MA c\r\nhi\r\n") else {
        panic!("ms")
    };
    assert_eq!(
        (value.as_slice(), flags.ttl, flags.client_flags, flags.compare_cas, flags.mode),
        (&b"hi"[..], Some(5), Some(3), Some(9), Some(b'A'))
    );
    assert_eq!(said("ms k\r\n"), BAD_FORMAT);
    assert_eq!(said("ms k abc\r\n"), BAD_FORMAT);
    assert_eq!(
        refusal("ms k 2 MX\r\nhi\r\n"),
        (Some("CLIENT_ERROR invalid mode for ms M token".into()), 15, false)
    );
    assert!(matches!(request("ma k N0 J5 MD D3 v\r\n"), Request::MetaArithmetic { .. }));
    assert!(matches!(request("md k q\r\n"), Request::MetaDelete { .. }));
    assert_eq!(request("mn\r\n"), Request::MetaNoop);
}

#[test]
fn a_line_too_long_closes_the_connection() {
    let long = vec![b'a'; LINE_BYTES_MAX];
    assert_eq!(
        parse(&long, MAX),
        Parsed::Refused {
            reply: Some("CLIENT_ERROR line too long".into()),
            consumed: long.len(),
            close: true
        }
    );
    assert_eq!(parse(&long[..LINE_BYTES_MAX - 1], MAX), Parsed::Incomplete);
    assert_eq!(said("get a\x01b\r\n"), BAD_FORMAT, "no control characters in keys");
}

proptest! {
    /// Any bytes: a request, a refusal or a wait for more, never a panic; what is taken is
    /// never nothing, so a connection always moves on.
    #[test]
    fn the_parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        match parse(&input, 64) {
            Parsed::Incomplete => {}
            Parsed::Request(_, consumed) => prop_assert!(consumed > 0 && consumed <= input.len()),
            Parsed::Refused { consumed, .. } => prop_assert!(consumed > 0),
        }
    }

    /// Lines made of the protocol's own words, in any order: the same.
    #[test]
    fn the_parser_never_panics_on_protocol_words(
        words in proptest::collection::vec(prop_oneof![
            Just("set"), Just("cas"), Just("get"), Just("gat"), Just("ms"), Just("mg"), Just("ma"),
            Just("md"), Just("delete"), Just("incr"), Just("touch"), Just("flush_all"), Just("noreply"),
            Just("0"), Just("-1"), Just("1"), Just("99999999999999999999"), Just("k"), Just("T1"),
            Just("M"), Just("\r\n"), Just(" "), Just("\n"), Just("x"),
        ], 0..16)
    ) {
        let input = words.join(" ");
        let _ = parse(input.as_bytes(), 4);
    }
}
