//! Every ACL user of the cluster, and the changes to them that the meta group replicates.

use super::rule::{Rule, RuleError, RULE_BYTES_MAX};
use super::user::{User, UserError};
use crate::codec::{DecodeError, Decoder, Encoder};
use std::collections::BTreeMap;

/// The user every connection starts as, and the one `requirepass` sets the password of.
pub const DEFAULT_USER: &str = "default";
/// Longest user name, in bytes.
pub const USER_NAME_BYTES_MAX: usize = 256;
/// Most users.
pub const USERS_MAX: usize = 4096;
/// Most rules in one change (ACL SETUSER's arguments, an ACL file's line).
pub const RULES_PER_CHANGE_MAX: usize = 4096;

/// Why a change to the users is refused (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A rule does not parse; `rule` is its text as given.
    #[error("Error in ACL SETUSER modifier '{rule}': {reason}")]
    Rule {
        /// The rule's text.
        rule: String,
        /// Why.
        reason: RuleError,
    },
    /// A rule does not apply to the user as it is.
    #[error("Error in ACL SETUSER modifier '{rule}': {reason}")]
    User {
        /// The rule's text.
        rule: String,
        /// Why.
        reason: UserError,
    },
    /// A user name with a space or a control character, empty, or too long.
    #[error("Usernames can't contain spaces or null characters")]
    BadName,
    /// Too many users.
    #[error("too many ACL users (at most {USERS_MAX})")]
    TooManyUsers,
    /// ACL DELUSER default.
    #[error("The 'default' user cannot be removed")]
    DeleteDefault,
}

/// A change to the users, as one meta group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclChange {
    /// ACL SETUSER: create `name` if new, then apply `rules` (canonical text) in order.
    SetUser {
        /// The user.
        name: String,
        /// Its rules, canonical: passwords only as hashes.
        rules: Vec<Vec<u8>>,
    },
    /// ACL DELUSER.
    DeleteUsers {
        /// The users; unknown ones are skipped.
        names: Vec<String>,
    },
}

impl AclChange {
    /// ACL SETUSER `name` `rules`, with the rules parsed (so a bad one is refused before it
    /// is proposed) and made canonical (so no password reaches the log).
    pub fn set_user(name: &[u8], rules: &[impl AsRef<[u8]>]) -> Result<AclChange, AclError> {
        let name = check_name(name)?;
        if rules.len() > RULES_PER_CHANGE_MAX {
            return Err(AclError::Rule { rule: String::new(), reason: RuleError::TooLong });
        }
        let rules = rules
            .iter()
            .map(|text| {
                Rule::parse(text.as_ref()).map(|rule| rule.canonical()).map_err(|reason| AclError::Rule {
                    rule: String::from_utf8_lossy(text.as_ref()).into_owned(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AclChange::SetUser { name, rules })
    }

    /// Writes the change into `e`.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            AclChange::SetUser { name, rules } => {
                e.u8(1);
                e.bytes(name.as_bytes());
                encode_rules(e, rules);
            }
            AclChange::DeleteUsers { names } => {
                e.u8(2);
                e.u32(u32::try_from(names.len()).unwrap_or(u32::MAX));
                for name in names {
                    e.bytes(name.as_bytes());
                }
            }
        }
    }

    /// Reads a change written by [`AclChange::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<AclChange, DecodeError> {
        Ok(match d.u8()? {
            1 => AclChange::SetUser { name: decode_name(d)?, rules: decode_rules(d)? },
            2 => {
                let count = d.count(USERS_MAX, 4)?;
                let names = (0..count).map(|_| decode_name(d)).collect::<Result<_, _>>()?;
                AclChange::DeleteUsers { names }
            }
            _ => return Err(d.error("unknown ACL change")),
        })
    }
}

/// A user name, if acceptable.
fn check_name(name: &[u8]) -> Result<String, AclError> {
    let acceptable =
        !name.is_empty() && name.len() <= USER_NAME_BYTES_MAX && name.iter().all(|&b| b > b' ' && b != 0x7f);
    match std::str::from_utf8(name) {
        Ok(text) if acceptable => Ok(text.to_string()),
        _ => Err(AclError::BadName),
    }
}

fn encode_rules(e: &mut Encoder, rules: &[Vec<u8>]) {
    e.u32(u32::try_from(rules.len()).unwrap_or(u32::MAX));
    for rule in rules {
        e.bytes(rule);
    }
}

fn decode_rules(d: &mut Decoder<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = d.count(RULES_PER_CHANGE_MAX, 4)?;
    (0..count).map(|_| d.bytes(RULE_BYTES_MAX).map(<[u8]>::to_vec)).collect()
}

fn decode_name(d: &mut Decoder<'_>) -> Result<String, DecodeError> {
    let name = d.bytes(USER_NAME_BYTES_MAX)?;
    check_name(name).map_err(|_| d.error("bad ACL user name"))
}

/// The users, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUsers {
    users: BTreeMap<String, User>,
}

impl Default for AclUsers {
    /// A cluster without ACL configuration: only `default`, open to all.
    fn default() -> AclUsers {
        AclUsers { users: BTreeMap::from([(DEFAULT_USER.to_string(), User::open())]) }
    }
}

impl AclUsers {
    /// The user named `name`.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Every user, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &User)> {
        self.users.iter()
    }

    /// Whether ACL configuration changed anything: if not, the cluster is open.
    pub fn is_configured(&self) -> bool {
        *self != AclUsers::default()
    }

    /// The user `name` logs in as with `password`, if any (AUTH, HELLO AUTH).
    pub fn authenticate(&self, name: &str, password: &[u8]) -> Option<&User> {
        self.users.get(name).filter(|user| user.accepts(password))
    }

    /// Applies `change`, all of it or nothing.
    pub fn apply(&mut self, change: &AclChange) -> Result<(), AclError> {
        match change {
            AclChange::SetUser { name, rules } => {
                if !self.users.contains_key(name) && self.users.len() >= USERS_MAX {
                    return Err(AclError::TooManyUsers);
                }
                let mut user = self.users.get(name).cloned().unwrap_or_default();
                for text in rules {
                    let rule = String::from_utf8_lossy(text).into_owned();
                    let parsed =
                        Rule::parse(text).map_err(|reason| AclError::Rule { rule: rule.clone(), reason })?;
                    user.apply(&parsed).map_err(|reason| AclError::User { rule, reason })?;
                }
                self.users.insert(name.clone(), user);
                Ok(())
            }
            AclChange::DeleteUsers { names } => {
                if names.iter().any(|n| n == DEFAULT_USER) {
                    return Err(AclError::DeleteDefault);
                }
                for name in names {
                    self.users.remove(name);
                }
                Ok(())
            }
        }
    }

    /// Writes every user as its canonical rules (for the meta group's snapshot).
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(u32::try_from(self.users.len()).unwrap_or(u32::MAX));
        for (name, user) in &self.users {
            e.bytes(name.as_bytes());
            encode_rules(e, &user.rules());
        }
    }

    /// Reads users written by [`AclUsers::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<AclUsers, DecodeError> {
        let count = d.count(USERS_MAX, 8)?;
        let mut users = BTreeMap::new();
        for _ in 0..count {
            let name = decode_name(d)?;
            let mut user = User::default();
            for text in decode_rules(d)? {
                let rule = Rule::parse(&text).map_err(|_| d.error("bad ACL rule"))?;
                user.apply(&rule).map_err(|_| d.error("ACL rule does not apply"))?;
            }
            users.insert(name, user);
        }
        Ok(AclUsers { users })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(name: &str, rules: &str) -> AclChange {
        AclChange::set_user(name.as_bytes(), &rules.split_whitespace().collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn changes_apply_whole_or_not_at_all() {
        let mut users = AclUsers::default();
        assert!(!users.is_configured());
        assert!(users.authenticate(DEFAULT_USER, b"anything").is_some());
        users.apply(&set("alice", "on >pw ~a:* +@read")).expect("applies");
        assert!(users.is_configured());
        assert!(users.authenticate("alice", b"pw").is_some());
        assert!(users.authenticate("alice", b"other").is_none());
        let before = users.clone();
        let refused = users.apply(&set("alice", "<nosuch ~b:*"));
        assert!(matches!(refused, Err(AclError::User { reason: UserError::NoSuchPassword, .. })));
        assert_eq!(users, before, "nothing of a refused change applies");
        assert_eq!(
            users.apply(&AclChange::DeleteUsers { names: vec!["default".into()] }),
            Err(AclError::DeleteDefault)
        );
        users.apply(&AclChange::DeleteUsers { names: vec!["alice".into(), "bob".into()] }).expect("applies");
        assert!(users.get("alice").is_none());
    }

    #[test]
    fn bad_rules_and_names_are_refused_before_proposing() {
        let refused = AclChange::set_user(b"x", &["on", "+@nosuch"]);
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL".into())
        );
        assert_eq!(AclChange::set_user(b"a b", &["on"]), Err(AclError::BadName));
        assert_eq!(AclChange::set_user(b"", &["on"]), Err(AclError::BadName));
        let change = set("x", ">secret");
        let AclChange::SetUser { rules, .. } = &change else { panic!("a set") };
        assert!(rules.iter().all(|r| r.first() == Some(&b'#')), "the log holds no password");
    }

    #[test]
    fn changes_and_users_round_trip() {
        let mut users = AclUsers::default();
        for change in [
            set("alice", "on >pw ~a:* %R~b &c +@read -get"),
            set("default", "resetpass >x"),
            AclChange::DeleteUsers { names: vec!["z".into()] },
        ] {
            let mut e = Encoder::default();
            change.encode(&mut e);
            let bytes = e.finish();
            let mut d = Decoder::new(&bytes, "test");
            assert_eq!(AclChange::decode(&mut d).as_ref(), Ok(&change));
            users.apply(&change).expect("applies");
        }
        let mut e = Encoder::default();
        users.encode(&mut e);
        let bytes = e.finish();
        assert_eq!(AclUsers::decode(&mut Decoder::new(&bytes, "test")), Ok(users));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AclChange::decode(&mut Decoder::new(&bytes, "fuzz"));
            let _ = AclUsers::decode(&mut Decoder::new(&bytes, "fuzz"));
        }
    }
}
