//! The RESP request parser (`server/resp/parse.rs`) and what a request becomes after it
//! (`Command::parse`, a write's log entry), fed bytes as a client could send them.
//!
//! Asserts: nothing panics; the requests and the final error do not depend on how the bytes
//! were split into reads (TCP segmentation); every request, re-encoded as a multibulk request,
//! decodes to the same arguments; a parsed write's log entry decodes to what was encoded.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ppdb::kv::KvWrite;
use ppdb::server::resp::{Command, ProtocolError, RequestDecoder, RespLimits};

/// Small limits, so every limit's error path is within the fuzzer's reach.
const LIMITS: RespLimits = RespLimits { bulk_bytes_max: 512, multibulk_args_max: 32, inline_bytes_max: 128 };

/// The requests decoded from a stream, and the protocol error that ended it, if any.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
}

/// Decodes `stream` as it arrives in reads of the sizes `read_sizes` cycles through.
fn decode_in_reads(stream: &[u8], read_sizes: &[u8]) -> Outcome {
    let mut decoder = RequestDecoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut outcome = Outcome { requests: Vec::new(), error: None };
    let mut rest = stream;
    let mut sizes = read_sizes.iter().cycle();
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => outcome.requests.push(args),
                Ok(None) => break,
                Err(error) => {
                    outcome.error = Some(error);
                    return outcome;
                }
            }
        }
        if rest.is_empty() {
            return outcome;
        }
        let size = sizes.next().map_or(rest.len(), |&n| usize::from(n).max(1)).min(rest.len());
        let (read, after) = rest.split_at(size);
        buf.extend_from_slice(read);
        rest = after;
    }
}

fn encode_multibulk(args: &[Bytes]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn check_request(args: &[Bytes]) {
    if !args.is_empty() && args.len() <= LIMITS.multibulk_args_max {
        let again = decode_in_reads(&encode_multibulk(args), &[]);
        assert_eq!(again.error, None, "a re-encoded request is refused");
        assert_eq!(again.requests, vec![args.to_vec()], "a re-encoded request decodes differently");
    }
    if let Ok(Command::Write(write)) = Command::parse(args) {
        if let Ok(entry) = write.resolve(1_700_000_000_000) {
            let bytes = entry.encode();
            let decoded = KvWrite::decode(&bytes).expect("an encoded write decodes");
            assert_eq!(decoded.encode(), bytes, "a write's log entry does not round-trip");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte says how many of the following bytes are read sizes.
    let Some((&sizes_len, rest)) = data.split_first() else { return };
    let (read_sizes, stream) = rest.split_at(usize::from(sizes_len % 16).min(rest.len()));
    let whole = decode_in_reads(stream, &[]);
    let in_reads = decode_in_reads(stream, read_sizes);
    assert_eq!(whole, in_reads, "the outcome depends on how the bytes were split into reads");
    for args in &whole.requests {
        check_request(args);
    }
});
