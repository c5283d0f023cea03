//! ACL checks inside scripts: a `redis.call` of a command or a key the calling user may not
//! use fails as Redis 7.2 fails it (`ERR ACL failure in script: User app has no permissions to
//! run the 'set' command`, `ERR ACL failure in script: No permissions to access a key`: the
//! words of the NOPERM error the command would get outside a script), raised by `redis.call`
//! and returned by `redis.pcall`. (Redis 7.0 words both differently: `ERR The user executing
//! the script can't run this command or subcommand`.)
//!
//! A script runs in its shard's apply code on every replica, so the check uses only what the
//! entry carries: the user's rules ([`ScriptAccess`]), rebuilt into a [`User`] here, never the
//! users a replica happens to hold. A call of an unrestricted user carries none and is not
//! checked. Rebuilt users are kept ([`ACCESS_CACHED_MAX`]), so a restricted user's scripts
//! parse its rules once per shard.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::acl::{CommandFacts, Rule, User};
use crate::kv::ScriptAccess;
use crate::server::acl::command_facts::{categories, command_keys, subcommand};
use crate::server::resp::command::table::CommandSpec;

/// Rebuilt users a shard keeps; past it the cache starts over.
pub const ACCESS_CACHED_MAX: usize = 64;

/// The start of Redis 7.2's error for a command or key refused inside a script.
pub const REFUSED: &str = "ERR ACL failure in script: ";

/// The permissions of the user a script runs for.
#[derive(Debug)]
pub struct Access {
    name: String,
    user: User,
}

impl Access {
    /// Rebuilds the user from its rules; rules that do not rebuild one allow nothing.
    fn rebuild(access: &ScriptAccess) -> Access {
        let name = String::from_utf8_lossy(&access.user).into_owned();
        let mut user = User::default();
        for text in &access.rules {
            let applied = Rule::parse(text).ok().is_some_and(|rule| user.apply(&rule).is_ok());
            if !applied {
                return Access { name, user: User::default() };
            }
        }
        Access { name, user }
    }

    /// Why the user may not run `args` (the command `spec`, name first), in Redis's words.
    pub fn refusal(&self, spec: &CommandSpec, args: &[Bytes]) -> Option<String> {
        let sub = subcommand(spec, args);
        let facts = CommandFacts {
            name: spec.name,
            subcommand: sub.as_deref(),
            categories: categories(spec, sub.as_deref()),
        };
        if !self.user.may_run(&facts) {
            let full = sub.map_or_else(|| spec.name.to_owned(), |sub| format!("{}|{sub}", spec.name));
            return Some(format!(
                "{REFUSED}User {} has no permissions to run the '{full}' command",
                self.name
            ));
        }
        let keys_allowed =
            command_keys(spec, args).into_iter().all(|(key, how)| self.user.may_access(key, how));
        (!keys_allowed).then(|| format!("{REFUSED}No permissions to access a key"))
    }
}

/// A user as a call carries it: its name and its rules.
type CarriedUser = (Vec<u8>, Vec<Vec<u8>>);

/// The users a shard's calls carried, rebuilt, by name and rules.
#[derive(Debug, Default)]
pub struct AccessCache {
    users: BTreeMap<CarriedUser, Arc<Access>>,
}

impl AccessCache {
    /// The permissions `access` describes.
    pub fn get(&mut self, access: &ScriptAccess) -> Arc<Access> {
        let key = (access.user.clone(), access.rules.clone());
        if let Some(found) = self.users.get(&key) {
            return Arc::clone(found);
        }
        if self.users.len() >= ACCESS_CACHED_MAX {
            self.users.clear();
        }
        let rebuilt = Arc::new(Access::rebuild(access));
        self.users.insert(key, Arc::clone(&rebuilt));
        rebuilt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resp::command::table::lookup;

    fn refusal(rules: &str, command: &str) -> Option<String> {
        let rules = rules.split(' ').map(|r| r.as_bytes().to_vec()).collect();
        let access = AccessCache::default().get(&ScriptAccess { user: b"u".to_vec(), rules });
        let args: Vec<Bytes> = command.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        access.refusal(lookup(&args[0]).expect("known"), &args)
    }

    #[test]
    fn commands_and_keys_are_checked_against_the_rules_carried() {
        let command =
            |name: &str| Some(format!("{REFUSED}User u has no permissions to run the '{name}' command"));
        let key = Some(format!("{REFUSED}No permissions to access a key"));
        assert_eq!(refusal("on ~a:* +@all -set", "GET a:1"), None);
        assert_eq!(refusal("on ~a:* +@all -set", "SET a:1 x"), command("set"));
        assert_eq!(refusal("on ~a:* +@all -set", "GET b:1"), key);
        assert_eq!(refusal("on %R~r:* +@all", "GET r:1"), None);
        assert_eq!(refusal("on %R~r:* +@all", "SET r:1 x"), key);
        assert_eq!(refusal("on ~* +@all -config|set", "CONFIG GET x"), None);
        assert_eq!(refusal("on ~* +@all -config|set", "CONFIG SET x y"), command("config|set"));
        assert_eq!(
            refusal("on ~* +@all +nosuchrule!", "GET a"),
            command("get"),
            "unparsable rules allow nothing"
        );
    }
}
