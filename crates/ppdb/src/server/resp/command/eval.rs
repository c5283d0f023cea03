//! EVAL, EVALSHA, EVAL_RO and EVALSHA_RO: `script numkeys key... arg...`; FCALL and FCALL_RO:
//! `function numkeys key... arg...`.

use bytes::Bytes;

use super::args::integer;
use super::error::CommandError;
use super::Command;

/// Where a script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// EVAL: the body itself.
    Body(Bytes),
    /// EVALSHA: the SHA1 of a body in the node's script cache.
    Sha(Bytes),
    /// FCALL: the name of a function of the cluster's libraries.
    Function(Bytes),
}

/// A script to run on the shard of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalCommand {
    /// The body, or its digest.
    pub source: ScriptSource,
    /// KEYS.
    pub keys: Vec<Vec<u8>>,
    /// ARGV.
    pub args: Vec<Vec<u8>>,
    /// EVAL_RO, EVALSHA_RO, FCALL_RO: writes are refused.
    pub read_only: bool,
}

/// Parses an EVAL-family command `name` (lower case); `None` if not one.
pub(super) fn parse(name: &str, args: &[Bytes]) -> Option<Result<Command, CommandError>> {
    let (source, read_only): (fn(Bytes) -> ScriptSource, bool) = match name {
        "eval" => (ScriptSource::Body, false),
        "eval_ro" => (ScriptSource::Body, true),
        "evalsha" => (ScriptSource::Sha, false),
        "evalsha_ro" => (ScriptSource::Sha, true),
        "fcall" => (ScriptSource::Function, false),
        "fcall_ro" => (ScriptSource::Function, true),
        _ => return None,
    };
    Some(eval(args, source, read_only))
}

fn eval(args: &[Bytes], source: fn(Bytes) -> ScriptSource, read_only: bool) -> Result<Command, CommandError> {
    let [script, numkeys, rest @ ..] = args else {
        return Err(CommandError::WrongArity { command: "eval" });
    };
    let source = source(script.clone());
    let numkeys = match (integer(numkeys), &source) {
        (Err(_), ScriptSource::Function(_)) => return Err(CommandError::BadNumKeys),
        (numkeys, _) => numkeys?,
    };
    let numkeys = usize::try_from(numkeys).map_err(|_| CommandError::NumKeysNegative)?;
    if numkeys > rest.len() {
        return Err(CommandError::NumKeysTooMany);
    }
    if script.len() as u64 > crate::kv::SCRIPT_BODY_BYTES_MAX {
        return Err(CommandError::ScriptTooLarge);
    }
    let (keys, args) = rest.split_at(numkeys);
    let to_vec = |items: &[Bytes]| items.iter().map(|item| item.to_vec()).collect();
    Ok(Command::Eval(EvalCommand { source, keys: to_vec(keys), args: to_vec(args), read_only }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, CommandError> {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        Command::parse(&args)
    }

    #[test]
    fn eval_splits_keys_from_arguments_and_refuses_bad_counts_as_redis() {
        let Ok(Command::Eval(eval)) = parse("EVALSHA_RO abc 2 k1 k2 a1") else { panic!("not parsed") };
        assert_eq!(eval.source, ScriptSource::Sha(Bytes::from_static(b"abc")));
        assert_eq!((eval.keys.len(), eval.args, eval.read_only), (2, vec![b"a1".to_vec()], true));
        // Texts from redis-server 7.0.15.
        for (line, text) in [
            ("EVAL x y", "ERR value is not an integer or out of range"),
            ("EVAL x 2 a", "ERR Number of keys can't be greater than number of args"),
            ("EVAL x -1", "ERR Number of keys can't be negative"),
            ("EVAL x", "ERR wrong number of arguments for 'eval' command"),
            ("FCALL f x", "ERR Bad number of keys provided"),
            ("FCALL_RO f 2 a", "ERR Number of keys can't be greater than number of args"),
        ] {
            assert_eq!(parse(line).expect_err(line).to_string(), text, "{line}");
        }
    }
}
