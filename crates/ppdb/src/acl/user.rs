//! One ACL user: whether it may log in, its passwords, and what it may run and touch.

use super::category::CategorySet;
use super::rule::{key_prefix, selector_text, CommandSelector, PasswordHash, Rule};
use crate::kv::glob::glob_match;
use std::collections::BTreeSet;

/// Most passwords one user keeps.
pub const PASSWORDS_MAX: usize = 64;
/// Most key patterns, channel patterns or command rules one user keeps (each).
pub const PATTERNS_MAX: usize = 1024;
/// The channel pattern that stands for every channel (`&*`, `allchannels`).
const ALL_CHANNELS: &[u8] = b"*";

/// A key pattern with the access it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    /// The glob.
    pub pattern: Vec<u8>,
    /// Reading matching keys is allowed.
    pub read: bool,
    /// Writing matching keys is allowed.
    pub write: bool,
}

/// How a command uses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAccess {
    /// It reads the key.
    Read,
    /// It writes the key.
    Write,
}

/// A command as permission checks see it.
#[derive(Debug, Clone, Copy)]
pub struct CommandFacts<'a> {
    /// Lower-case name.
    pub name: &'a str,
    /// Lower-case subcommand of a container command (`get` of `config get`).
    pub subcommand: Option<&'a str>,
    /// Its categories.
    pub categories: CategorySet,
}

/// Why the state of a user refuses a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// `<password` or `!hash` of a password the user does not have.
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    /// A channel pattern after `&*`, which already allows every channel.
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    ChannelAfterAll,
    /// A key pattern after `~*`, which already allows every key.
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    PatternAfterAll,
    /// One list would pass its limit.
    #[error("too many passwords or patterns for one user (at most {PATTERNS_MAX} of each, {PASSWORDS_MAX} passwords)")]
    TooMany,
}

/// One user, as rules built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    enabled: bool,
    nopass: bool,
    passwords: BTreeSet<PasswordHash>,
    keys: Vec<KeyPattern>,
    channels: Vec<Vec<u8>>,
    /// Allow and deny rules in the order given; the last one that selects a command decides.
    commands: Vec<(bool, CommandSelector)>,
}

impl Default for User {
    /// A new user, as ACL SETUSER creates it: off, no password, nothing allowed.
    fn default() -> User {
        User {
            enabled: false,
            nopass: false,
            passwords: BTreeSet::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            commands: Vec::new(),
        }
    }
}

impl User {
    /// The `default` user of a server without ACL configuration: on, no password, everything.
    pub fn open() -> User {
        let mut user = User::default();
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            if let Ok(rule) = Rule::parse(rule.as_bytes()) {
                let _ = user.apply(&rule);
            }
        }
        user
    }

    /// Applies one rule.
    pub fn apply(&mut self, rule: &Rule) -> Result<(), UserError> {
        match rule {
            Rule::On => self.enabled = true,
            Rule::Off => self.enabled = false,
            Rule::AddPassword(hash) => {
                if self.passwords.len() >= PASSWORDS_MAX && !self.passwords.contains(hash) {
                    return Err(UserError::TooMany);
                }
                self.passwords.insert(*hash);
                self.nopass = false;
            }
            Rule::RemovePassword(hash) => {
                if !self.passwords.remove(hash) {
                    return Err(UserError::NoSuchPassword);
                }
                self.nopass = false;
            }
            Rule::NoPass => {
                self.passwords.clear();
                self.nopass = true;
            }
            Rule::ResetPass => {
                self.passwords.clear();
                self.nopass = false;
            }
            Rule::Keys { pattern, read, write } => {
                if self.keys.iter().any(|p| p.pattern == b"*" && p.read && p.write) {
                    return Err(UserError::PatternAfterAll);
                }
                let pattern = KeyPattern { pattern: pattern.clone(), read: *read, write: *write };
                if !self.keys.contains(&pattern) {
                    bounded_push(&mut self.keys, pattern)?;
                }
            }
            Rule::ResetKeys => self.keys.clear(),
            // `&*` stands for every channel, alone, as Redis keeps it; a pattern after it
            // changes nothing (a new change offering one is refused: [`User::refuses`]).
            Rule::Channels(pattern) if pattern == ALL_CHANNELS => self.channels = vec![ALL_CHANNELS.to_vec()],
            Rule::Channels(_) if self.all_channels() => {}
            Rule::Channels(pattern) => {
                if !self.channels.contains(pattern) {
                    bounded_push(&mut self.channels, pattern.clone())?;
                }
            }
            Rule::ResetChannels => self.channels.clear(),
            Rule::Allow(selector) => self.command_rule(true, selector)?,
            Rule::Deny(selector) => self.command_rule(false, selector)?,
            Rule::Reset => *self = User::default(),
        }
        Ok(())
    }

    /// Why Redis would refuse `rule` for this user in a new change (ACL SETUSER, an ACL file),
    /// beyond what [`User::apply`] refuses: applying it changes nothing, and changes already
    /// in the log or a snapshot apply as they did.
    pub fn refuses(&self, rule: &Rule) -> Option<UserError> {
        match rule {
            Rule::Channels(pattern) if pattern != ALL_CHANNELS && self.all_channels() => {
                Some(UserError::ChannelAfterAll)
            }
            _ => None,
        }
    }

    /// Adds an allow or deny rule; one about every command makes the ones before it moot,
    /// and a rule replaces an earlier one about the same selector.
    fn command_rule(&mut self, allow: bool, selector: &CommandSelector) -> Result<(), UserError> {
        if *selector == CommandSelector::All {
            self.commands.clear();
            if !allow {
                // Nothing allowed is what an empty list says.
                return Ok(());
            }
        }
        self.commands.retain(|(_, s)| s != selector);
        bounded_push(&mut self.commands, (allow, selector.clone()))
    }

    /// Whether the user may log in.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `password` logs this user in (an enabled user only).
    pub fn accepts(&self, password: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&PasswordHash::of(password)))
    }

    /// Whether the user may log in without a password (`on nopass`): a connection starts
    /// logged in as `default` only then.
    pub fn needs_no_password(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether the user may run `command`.
    pub fn may_run(&self, command: &CommandFacts<'_>) -> bool {
        let mut allowed = false;
        for (allow, selector) in &self.commands {
            let selects = match selector {
                CommandSelector::All => true,
                CommandSelector::Category(category) => command.categories.contains(*category),
                CommandSelector::Command(name) => match name.split_once('|') {
                    Some((parent, sub)) => parent == command.name && Some(sub) == command.subcommand,
                    None => name == command.name,
                },
            };
            if selects {
                allowed = *allow;
            }
        }
        allowed
    }

    /// Whether the user may run every command on every key (`+@all ~*`, nothing denied).
    pub fn is_unrestricted(&self) -> bool {
        matches!(&self.commands[..], [(true, CommandSelector::All)])
            && self.keys.iter().any(|p| p.pattern == b"*" && p.read && p.write)
    }

    /// Whether the user may access `key` so.
    pub fn may_access(&self, key: &[u8], access: KeyAccess) -> bool {
        self.keys.iter().any(|p| {
            let granted = match access {
                KeyAccess::Read => p.read,
                KeyAccess::Write => p.write,
            };
            granted && glob_match(&p.pattern, key)
        })
    }

    /// Whether the user may publish to `channel` or subscribe to it, or, with `pattern`,
    /// subscribe to the pattern `channel`, as Redis 7 decides: a channel must match one of
    /// the user's channel patterns; a pattern must be one of them, letter for letter (unless
    /// the user has every channel, `&*`).
    pub fn may_use_channel(&self, channel: &[u8], pattern: bool) -> bool {
        self.all_channels()
            || self.channels.iter().any(|p| if pattern { p == channel } else { glob_match(p, channel) })
    }

    /// Whether the user has every channel (`&*`, `allchannels`).
    fn all_channels(&self) -> bool {
        self.channels.first().is_some_and(|p| p == ALL_CHANNELS)
    }

    /// The user's flags as ACL GETUSER lists them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags
    }

    /// The password hashes, as hex.
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(ToString::to_string).collect()
    }

    /// The command rules as ACL GETUSER and ACL LIST show them (`+@all -@dangerous`).
    pub fn command_text(&self) -> String {
        let mut words = Vec::new();
        if !matches!(self.commands.first(), Some((_, CommandSelector::All))) {
            words.push("-@all".to_string());
        }
        for (allow, selector) in &self.commands {
            words.push(format!("{}{}", if *allow { '+' } else { '-' }, selector_text(selector)));
        }
        words.join(" ")
    }

    /// The key patterns as ACL GETUSER shows them (`~app:* %R~r:*`).
    pub fn key_text(&self) -> Vec<u8> {
        let patterns: Vec<Vec<u8>> =
            self.keys.iter().map(|p| [key_prefix(p.read, p.write), &p.pattern].concat()).collect();
        patterns.join(&b' ')
    }

    /// The channel patterns as ACL GETUSER shows them (`&*`).
    pub fn channel_text(&self) -> Vec<u8> {
        let patterns: Vec<Vec<u8>> = self.channels.iter().map(|p| [b"&", p.as_slice()].concat()).collect();
        patterns.join(&b' ')
    }

    /// The rules that rebuild this user from a new one, canonical (passwords as hashes): what
    /// ACL LIST shows after the name, and what the meta group's snapshot holds.
    pub fn rules(&self) -> Vec<Vec<u8>> {
        let mut rules: Vec<Rule> = vec![if self.enabled { Rule::On } else { Rule::Off }];
        if self.nopass {
            rules.push(Rule::NoPass);
        }
        rules.extend(self.passwords.iter().map(|h| Rule::AddPassword(*h)));
        rules.extend(self.keys.iter().map(|p| Rule::Keys {
            pattern: p.pattern.clone(),
            read: p.read,
            write: p.write,
        }));
        // As Redis describes a user: `&*`, or `resetchannels` and the patterns.
        if !self.all_channels() {
            rules.push(Rule::ResetChannels);
        }
        rules.extend(self.channels.iter().map(|p| Rule::Channels(p.clone())));
        let mut words: Vec<Vec<u8>> = rules.iter().map(Rule::canonical).collect();
        words.extend(self.command_text().split(' ').map(|w| w.as_bytes().to_vec()));
        words
    }
}

fn bounded_push<T>(list: &mut Vec<T>, item: T) -> Result<(), UserError> {
    if list.len() >= PATTERNS_MAX {
        return Err(UserError::TooMany);
    }
    list.push(item);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::category::Category;

    fn user(rules: &str) -> User {
        let mut user = User::default();
        for token in rules.split_whitespace() {
            let rule = Rule::parse(token.as_bytes()).expect("a rule");
            user.apply(&rule).expect("applies");
        }
        user
    }

    fn facts<'a>(name: &'a str, sub: Option<&'a str>, categories: &[Category]) -> CommandFacts<'a> {
        CommandFacts { name, subcommand: sub, categories: CategorySet::of(categories) }
    }

    #[test]
    fn the_last_rule_that_selects_a_command_decides() {
        let get = facts("get", None, &[Category::Read, Category::String, Category::Fast]);
        let set = facts("set", None, &[Category::Write, Category::String, Category::Slow]);
        let flush = facts("flushall", None, &[Category::Write, Category::Dangerous, Category::Keyspace]);
        assert!(!User::default().may_run(&get), "a new user runs nothing");
        let reader = user("+@read");
        assert!(reader.may_run(&get) && !reader.may_run(&set));
        let careful = user("+@all -@dangerous +flushall -set");
        assert!(careful.may_run(&get) && careful.may_run(&flush) && !careful.may_run(&set));
        assert_eq!(careful.command_text(), "+@all -@dangerous +flushall -set");
        assert_eq!(user("+get -@all +set").command_text(), "-@all +set");
        let config_get = facts("config", Some("get"), &[Category::Admin]);
        let config_set = facts("config", Some("set"), &[Category::Admin]);
        let some_config = user("+config -config|set");
        assert!(some_config.may_run(&config_get) && !some_config.may_run(&config_set));
        let only_get = user("+config|get");
        assert!(only_get.may_run(&config_get) && !only_get.may_run(&config_set));
    }

    #[test]
    fn key_patterns_grant_read_write_or_both() {
        let u = user("~app:* %R~ro:* %W~wo:*");
        assert!(u.may_access(b"app:1", KeyAccess::Read) && u.may_access(b"app:1", KeyAccess::Write));
        assert!(u.may_access(b"ro:1", KeyAccess::Read) && !u.may_access(b"ro:1", KeyAccess::Write));
        assert!(!u.may_access(b"wo:1", KeyAccess::Read) && u.may_access(b"wo:1", KeyAccess::Write));
        assert!(!u.may_access(b"other", KeyAccess::Read));
        assert_eq!(u.key_text(), b"~app:* %R~ro:* %W~wo:*");
        assert!(!user("~a resetkeys").may_access(b"a", KeyAccess::Read));
        let mut all = user("allkeys");
        let after = all.apply(&Rule::Keys { pattern: b"x".to_vec(), read: true, write: false });
        assert_eq!(after, Err(UserError::PatternAfterAll), "as Redis 7.0 refuses it");
    }

    #[test]
    fn channels_match_as_globs_and_patterns_letter_for_letter() {
        let u = user("&news.* &chat");
        assert!(u.may_use_channel(b"news.1", false) && u.may_use_channel(b"chat", false));
        assert!(!u.may_use_channel(b"other", false) && !u.may_use_channel(b"chatter", false));
        assert!(u.may_use_channel(b"news.*", true), "the user's own pattern");
        assert!(u.may_use_channel(b"chat", true));
        assert!(!u.may_use_channel(b"news.x*", true), "a narrower pattern is not one of the user's");
        assert!(!u.may_use_channel(b"*", true));
        assert!(
            !User::default().may_use_channel(b"chat", false),
            "a new user has no channel (resetchannels)"
        );
        let all = user("&a allchannels");
        assert!(all.may_use_channel(b"anything", false) && all.may_use_channel(b"x*", true));
        assert_eq!(all.channel_text(), b"&*", "every channel, alone, as Redis shows it");
        assert_eq!(all.refuses(&Rule::Channels(b"b".to_vec())), Some(UserError::ChannelAfterAll));
        assert_eq!(user("&a").refuses(&Rule::Channels(b"b".to_vec())), None);
        assert!(!user("&* resetchannels &b").may_use_channel(b"a", false));
        let text =
            |u: &User| u.rules().iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>();
        assert_eq!(text(&u), ["off", "resetchannels", "&news.*", "&chat", "-@all"], "as Redis's ACL LIST");
        assert_eq!(text(&all), ["off", "&*", "-@all"]);
    }

    #[test]
    fn passwords_log_in_an_enabled_user_only() {
        let u = user("on >one >two");
        assert!(u.accepts(b"one") && u.accepts(b"two") && !u.accepts(b"three"));
        assert!(!user("off >one").accepts(b"one"));
        assert!(user("on nopass").accepts(b"anything"));
        assert!(!user("on nopass >one").accepts(b"anything"), "a password ends nopass");
        let mut removing = user("on >one");
        assert_eq!(removing.apply(&Rule::parse(b"<two").expect("rule")), Err(UserError::NoSuchPassword));
        assert!(!user("on >one <one").accepts(b"one"));
        assert!(!user("on >one resetpass").accepts(b"one"));
        assert_eq!(user("on >one reset"), User::default());
    }

    #[test]
    fn rules_rebuild_the_same_user() {
        for rules in ["on >a ~k:* %R~r &* +@all -@dangerous +flushall", "off nopass", "", "+get|x -@all"] {
            let original = user(rules);
            let text: Vec<String> =
                original.rules().iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect();
            assert_eq!(user(&text.join(" ")), original, "{rules}");
        }
        assert_eq!(
            User::open().rules().iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>(),
            ["on", "nopass", "~*", "&*", "+@all"]
        );
        assert_eq!(
            user("+get").rules().iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>(),
            ["off", "resetchannels", "-@all", "+get"]
        );
    }

    #[test]
    fn lists_are_bounded() {
        let mut u = User::default();
        for i in 0..PATTERNS_MAX {
            assert_eq!(
                u.apply(&Rule::Keys { pattern: i.to_string().into_bytes(), read: true, write: true }),
                Ok(())
            );
        }
        let one_more = Rule::Keys { pattern: b"x".to_vec(), read: true, write: true };
        assert_eq!(u.apply(&one_more), Err(UserError::TooMany));
    }
}
