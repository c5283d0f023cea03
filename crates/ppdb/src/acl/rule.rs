//! One ACL rule (`on`, `>password`, `~pattern`, `+@read`, ...), parsed from untrusted text:
//! ACL SETUSER's arguments, an ACL file's lines, or the meta group's log and snapshot.
//!
//! A password rule is hashed as it is parsed, so the canonical text of a rule
//! ([`Rule::canonical`]), which is what the log and snapshots hold, never carries a password.

use super::category::Category;
use sha2::{Digest, Sha256};
use std::fmt;

/// Longest rule accepted, in bytes (a password or a key pattern with its prefix).
pub const RULE_BYTES_MAX: usize = 4096;
/// Longest command name in a `+command|subcommand` rule, in bytes.
const COMMAND_NAME_BYTES_MAX: usize = 64;

/// The SHA-256 of a password, as Redis stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PasswordHash(pub [u8; 32]);

impl PasswordHash {
    /// The hash of `password`.
    pub fn of(password: &[u8]) -> PasswordHash {
        PasswordHash(Sha256::digest(password).into())
    }

    /// The hash written as 64 lower-case hex digits (`#<hex>` rules), if `text` is one.
    pub fn from_hex(text: &[u8]) -> Option<PasswordHash> {
        if text.len() != 64 {
            return None;
        }
        let mut hash = [0u8; 32];
        for (byte, pair) in hash.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(PasswordHash(hash))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What a command rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSelector {
    /// Every command (`+@all`, `allcommands`).
    All,
    /// The commands of a category.
    Category(Category),
    /// One command (`get`), or one subcommand of a container (`config|get`), lower case.
    Command(String),
}

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `on`: the user may log in.
    On,
    /// `off`: the user may not log in.
    Off,
    /// `>password` or `#hash`: accept this password.
    AddPassword(PasswordHash),
    /// `<password` or `!hash`: no longer accept this password.
    RemovePassword(PasswordHash),
    /// `nopass`: any password logs in (passwords are forgotten).
    NoPass,
    /// `resetpass`: forget every password and `nopass`.
    ResetPass,
    /// `~pattern` (read and write), `%R~pattern` or `%W~pattern`; `allkeys` is `~*`.
    Keys {
        /// The key glob.
        pattern: Vec<u8>,
        /// Reading matching keys is allowed.
        read: bool,
        /// Writing matching keys is allowed.
        write: bool,
    },
    /// `resetkeys`: no key pattern.
    ResetKeys,
    /// `&pattern`; `allchannels` is `&*`: channels the user may publish and subscribe to.
    Channels(Vec<u8>),
    /// `resetchannels`.
    ResetChannels,
    /// `+command`, `+@category`, `allcommands`.
    Allow(CommandSelector),
    /// `-command`, `-@category`, `nocommands`.
    Deny(CommandSelector),
    /// `reset`: back to a new user's state (`resetpass resetkeys resetchannels off -@all`).
    Reset,
}

/// Why a rule does not parse, worded as Redis words it after `Error in ACL SETUSER modifier
/// '<rule>': `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not a rule at all.
    #[error("Syntax error")]
    Syntax,
    /// `+name` or `+@name` that names no command or category.
    #[error("Unknown command or category name in ACL")]
    Unknown,
    /// A `#`/`!` hash that is not 64 lower-case hex digits.
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    )]
    BadHash,
    /// Longer than [`RULE_BYTES_MAX`].
    #[error("rule longer than {RULE_BYTES_MAX} bytes")]
    TooLong,
}

impl Rule {
    /// Parses one rule. Command names are checked for shape only; the caller checks that they
    /// name known commands (the ACL layer does not know the command table).
    pub fn parse(token: &[u8]) -> Result<Rule, RuleError> {
        if token.len() > RULE_BYTES_MAX {
            return Err(RuleError::TooLong);
        }
        let lower = token.to_ascii_lowercase();
        let simple = match lower.as_slice() {
            b"on" => Some(Rule::On),
            b"off" => Some(Rule::Off),
            b"nopass" => Some(Rule::NoPass),
            b"resetpass" => Some(Rule::ResetPass),
            b"allkeys" => Some(Rule::Keys { pattern: b"*".to_vec(), read: true, write: true }),
            b"resetkeys" => Some(Rule::ResetKeys),
            b"allchannels" => Some(Rule::Channels(b"*".to_vec())),
            b"resetchannels" => Some(Rule::ResetChannels),
            b"allcommands" => Some(Rule::Allow(CommandSelector::All)),
            b"nocommands" => Some(Rule::Deny(CommandSelector::All)),
            b"reset" => Some(Rule::Reset),
            _ => None,
        };
        if let Some(rule) = simple {
            return Ok(rule);
        }
        let Some((&first, rest)) = token.split_first() else { return Err(RuleError::Syntax) };
        Ok(match first {
            b'>' => Rule::AddPassword(PasswordHash::of(rest)),
            b'<' => Rule::RemovePassword(PasswordHash::of(rest)),
            b'#' => Rule::AddPassword(PasswordHash::from_hex(rest).ok_or(RuleError::BadHash)?),
            b'!' => Rule::RemovePassword(PasswordHash::from_hex(rest).ok_or(RuleError::BadHash)?),
            b'~' => Rule::Keys { pattern: rest.to_vec(), read: true, write: true },
            b'%' => key_permission(rest)?,
            b'&' => Rule::Channels(rest.to_vec()),
            b'+' => Rule::Allow(selector(rest)?),
            b'-' => Rule::Deny(selector(rest)?),
            _ => return Err(RuleError::Syntax),
        })
    }

    /// The rule as ACL LIST shows it and the log holds it: passwords as `#<hash>`.
    pub fn canonical(&self) -> Vec<u8> {
        match self {
            Rule::On => b"on".to_vec(),
            Rule::Off => b"off".to_vec(),
            Rule::AddPassword(hash) => format!("#{hash}").into_bytes(),
            Rule::RemovePassword(hash) => format!("!{hash}").into_bytes(),
            Rule::NoPass => b"nopass".to_vec(),
            Rule::ResetPass => b"resetpass".to_vec(),
            Rule::Keys { pattern, read, write } => [key_prefix(*read, *write), pattern].concat(),
            Rule::ResetKeys => b"resetkeys".to_vec(),
            Rule::Channels(pattern) => [b"&", pattern.as_slice()].concat(),
            Rule::ResetChannels => b"resetchannels".to_vec(),
            Rule::Allow(selector) => format!("+{}", selector_text(selector)).into_bytes(),
            Rule::Deny(selector) => format!("-{}", selector_text(selector)).into_bytes(),
            Rule::Reset => b"reset".to_vec(),
        }
    }
}

/// The prefix of a key pattern rule with these permissions.
pub(super) fn key_prefix(read: bool, write: bool) -> &'static [u8] {
    match (read, write) {
        (true, false) => b"%R~",
        (false, true) => b"%W~",
        _ => b"~",
    }
}

/// A selector as rules write it after `+` or `-`.
pub(super) fn selector_text(selector: &CommandSelector) -> String {
    match selector {
        CommandSelector::All => "@all".to_string(),
        CommandSelector::Category(category) => format!("@{}", category.name()),
        CommandSelector::Command(name) => name.clone(),
    }
}

/// `%R~pattern`, `%W~pattern`, `%RW~pattern` (after the `%`).
fn key_permission(rest: &[u8]) -> Result<Rule, RuleError> {
    let tilde = rest.iter().position(|&b| b == b'~').ok_or(RuleError::Syntax)?;
    let (flags, pattern) = (&rest[..tilde], &rest[tilde + 1..]);
    let (mut read, mut write) = (false, false);
    for flag in flags {
        match flag.to_ascii_uppercase() {
            b'R' => read = true,
            b'W' => write = true,
            _ => return Err(RuleError::Syntax),
        }
    }
    if !read && !write {
        return Err(RuleError::Syntax);
    }
    Ok(Rule::Keys { pattern: pattern.to_vec(), read, write })
}

/// What follows `+` or `-`: `@category`, `@all`, `command` or `command|subcommand`.
fn selector(rest: &[u8]) -> Result<CommandSelector, RuleError> {
    if let Some(category) = rest.strip_prefix(b"@") {
        if category.eq_ignore_ascii_case(b"all") {
            return Ok(CommandSelector::All);
        }
        return Category::from_name(category).map(CommandSelector::Category).ok_or(RuleError::Unknown);
    }
    let well_formed = !rest.is_empty()
        && rest.len() <= COMMAND_NAME_BYTES_MAX
        && rest.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'|' || b == b'-')
        && rest.iter().filter(|&&b| b == b'|').count() <= 1
        && rest.first() != Some(&b'|')
        && rest.last() != Some(&b'|');
    if !well_formed {
        return Err(RuleError::Unknown);
    }
    Ok(CommandSelector::Command(String::from_utf8_lossy(rest).to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Rule, RuleError> {
        Rule::parse(text.as_bytes())
    }

    #[test]
    fn rules_parse_as_redis_writes_them() {
        assert_eq!(parse("ON"), Ok(Rule::On));
        assert_eq!(parse(">secret"), Ok(Rule::AddPassword(PasswordHash::of(b"secret"))));
        // redis-cli ACL GETUSER shows this hash for the password "secret".
        let hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        assert_eq!(PasswordHash::of(b"secret").to_string(), hash);
        assert_eq!(parse(&format!("#{hash}")), Ok(Rule::AddPassword(PasswordHash::of(b"secret"))));
        assert_eq!(parse("#ABC"), Err(RuleError::BadHash));
        assert_eq!(parse(&format!("#{}", hash.to_uppercase())), Err(RuleError::BadHash));
        assert_eq!(parse("~app:*"), Ok(Rule::Keys { pattern: b"app:*".to_vec(), read: true, write: true }));
        assert_eq!(parse("%R~r:*"), Ok(Rule::Keys { pattern: b"r:*".to_vec(), read: true, write: false }));
        assert_eq!(parse("%RW~x"), Ok(Rule::Keys { pattern: b"x".to_vec(), read: true, write: true }));
        assert_eq!(parse("%X~x"), Err(RuleError::Syntax));
        assert_eq!(parse("%~x"), Err(RuleError::Syntax));
        assert_eq!(parse("+@READ"), Ok(Rule::Allow(CommandSelector::Category(Category::Read))));
        assert_eq!(parse("-@all"), Ok(Rule::Deny(CommandSelector::All)));
        assert_eq!(parse("+@nosuch"), Err(RuleError::Unknown));
        assert_eq!(parse("+CONFIG|GET"), Ok(Rule::Allow(CommandSelector::Command("config|get".into()))));
        assert_eq!(parse("+a||b"), Err(RuleError::Unknown));
        assert_eq!(parse("bogus"), Err(RuleError::Syntax));
        assert_eq!(parse(""), Err(RuleError::Syntax));
        assert_eq!(Rule::parse(&vec![b'~'; RULE_BYTES_MAX + 1]), Err(RuleError::TooLong));
    }

    #[test]
    fn canonical_text_hides_passwords_and_parses_back() {
        let rule = parse(">hunter2").expect("a rule");
        let text = rule.canonical();
        assert!(!text.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(Rule::parse(&text), Ok(rule));
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_canonical_text_round_trips(token in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(rule) = Rule::parse(&token) {
                prop_assert_eq!(Rule::parse(&rule.canonical()), Ok(rule));
            }
        }

        #[test]
        fn rule_shaped_text_round_trips(
            prefix in prop::sample::select(vec!["", ">", "<", "#", "!", "~", "%R~", "%W~", "&", "+", "-", "+@", "-@"]),
            body in "[a-z0-9|*?:@]{0,20}",
        ) {
            let token = format!("{prefix}{body}");
            if let Ok(rule) = Rule::parse(token.as_bytes()) {
                prop_assert_eq!(Rule::parse(&rule.canonical()), Ok(rule));
            }
        }
    }
}
