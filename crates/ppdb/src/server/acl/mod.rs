//! Client authentication and ACL enforcement, as Redis 6+ does them: who a connection is
//! logged in as ([`SessionAuth`]), the check every request passes before it runs or is queued
//! inside MULTI (`NOAUTH`, `NOPERM` for commands, keys and channels), whether a subscriber may
//! keep its subscriptions when its user changes, AUTH and HELLO AUTH (`WRONGPASS`), and the
//! ACL command.
//!
//! The users are the meta group's ([`crate::node::Directory::users`]), so every node enforces
//! the same ones. Until the cluster has any ACL configuration (a node that has not applied the
//! meta log yet, or a cluster never configured), a node enforces the users of its own settings
//! (`requirepass`, `aclfile`), which it also proposes to the meta group at start
//! ([`AccessControl::proposals`]).

pub mod command_facts;
pub mod reply;

use crate::acl::file::{parse_acl_file, requirepass_change};
use crate::acl::{AclChange, AclUsers, CommandFacts, User, DEFAULT_USER};
use crate::kv::ScriptAccess;
use crate::node::Directory;
use crate::server::resp::command::table::lookup;
use crate::server::resp::Frame;
use bytes::Bytes;
use command_facts::{categories, command_channels, command_keys, subcommand};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Counters of refusals, for INFO (`acl_access_denied_*`) and `/metrics`.
#[derive(Debug, Default)]
pub struct AclStats {
    /// AUTH and HELLO AUTH with a wrong user name or password.
    pub denied_auth: AtomicU64,
    /// Commands refused by the user's command rules.
    pub denied_cmd: AtomicU64,
    /// Commands refused by the user's key patterns.
    pub denied_key: AtomicU64,
    /// Commands refused by the user's channel patterns.
    pub denied_channel: AtomicU64,
}

impl AclStats {
    /// The counters as Prometheus text, labelled with `node`.
    pub fn prometheus(&self, node: u64) -> String {
        let mut out = String::from(
            "# HELP ppdb_acl_denied_total Client requests refused: failed logins (auth), commands, keys and channels a user may not use.\n\
             # TYPE ppdb_acl_denied_total counter\n",
        );
        for (reason, counter) in [
            ("auth", &self.denied_auth),
            ("cmd", &self.denied_cmd),
            ("key", &self.denied_key),
            ("channel", &self.denied_channel),
        ] {
            let value = counter.load(Ordering::Relaxed);
            out.push_str(&format!("ppdb_acl_denied_total{{node=\"{node}\",reason=\"{reason}\"}} {value}\n"));
        }
        out
    }
}

/// The users a node enforces, shared by its connections.
pub struct AccessControl {
    directory: watch::Receiver<Directory>,
    /// The users of this node's own settings.
    local: Arc<AclUsers>,
    /// What this node's settings propose to the meta group.
    proposals: Vec<AclChange>,
    /// Refusals counted.
    pub stats: Arc<AclStats>,
}

/// Why a node's authentication settings are refused at start.
#[derive(Debug, thiserror::Error)]
pub enum AclSettingsError {
    /// The ACL file cannot be read.
    #[error("cannot read the ACL file {path}: {reason}")]
    Read {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The ACL file does not parse.
    #[error("ACL file {path}: {reason}")]
    Parse {
        /// Its path.
        path: String,
        /// Why.
        reason: crate::acl::file::AclFileError,
    },
}

impl AccessControl {
    /// Enforces the directory's users, or until it has some, those of `aclfile`'s text then
    /// `requirepass`.
    pub fn new(
        directory: watch::Receiver<Directory>,
        aclfile: Option<(&str, &[u8])>,
        requirepass: Option<&[u8]>,
        stats: Arc<AclStats>,
    ) -> Result<AccessControl, AclSettingsError> {
        let mut proposals = match aclfile {
            Some((path, text)) => parse_acl_file(text)
                .map_err(|reason| AclSettingsError::Parse { path: path.to_string(), reason })?,
            None => Vec::new(),
        };
        proposals.extend(requirepass.map(requirepass_change));
        let mut local = AclUsers::default();
        for change in &proposals {
            // parse_acl_file checked every rule; what remains is a rule that does not apply
            // (removing a password the user lacks), skipped as Redis skips nothing: refuse.
            if let Err(e) = local.apply(change) {
                return Err(AclSettingsError::Parse {
                    path: aclfile.map_or("requirepass", |(p, _)| p).to_string(),
                    reason: crate::acl::file::AclFileError::Rules { line: 0, error: e },
                });
            }
        }
        Ok(AccessControl { directory, local: Arc::new(local), proposals, stats })
    }

    /// The users in force now.
    pub fn users(&self) -> Arc<AclUsers> {
        effective(&self.directory.borrow(), &self.local)
    }

    /// The changes this node's settings make, to propose to the meta group (those the
    /// directory already reflects change nothing when applied again).
    pub fn proposals(&self) -> &[AclChange] {
        &self.proposals
    }

    /// Whether a meta-group change is still needed for `change` to hold in `directory`.
    pub fn pending(directory: &Directory, change: &AclChange) -> bool {
        let mut after = AclUsers::clone(directory.users());
        after.apply(change).is_ok() && after != **directory.users()
    }

    /// A fresh connection's view: logged in as `default` if that needs no password.
    pub fn session(&self) -> SessionAuth {
        let users = self.users();
        let mut auth = SessionAuth {
            updates: self.directory.clone(),
            local: Arc::clone(&self.local),
            open: !users.is_configured(),
            users,
            user: DEFAULT_USER.to_string(),
            authenticated: false,
            stats: Arc::clone(&self.stats),
        };
        auth.reset();
        auth
    }
}

fn effective(directory: &Directory, local: &Arc<AclUsers>) -> Arc<AclUsers> {
    if directory.users().is_configured() {
        Arc::clone(directory.users())
    } else {
        Arc::clone(local)
    }
}

/// Who a connection is logged in as, and the users as it last saw them.
pub struct SessionAuth {
    updates: watch::Receiver<Directory>,
    local: Arc<AclUsers>,
    users: Arc<AclUsers>,
    /// No ACL configuration: every check passes.
    open: bool,
    user: String,
    authenticated: bool,
    stats: Arc<AclStats>,
}

/// What the check of a request decided, when it refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not logged in.
    NoAuth,
    /// The user was deleted: the connection closes, as Redis closes it.
    UserGone,
    /// The user may not run the command (`full name`).
    Command(String),
    /// The user may not touch one of the keys.
    Key,
    /// The user may not publish or subscribe to one of the channels.
    Channel,
}

impl SessionAuth {
    /// The user's name (CLIENT LIST's `user`, ACL WHOAMI).
    pub fn user_name(&self) -> &str {
        &self.user
    }

    /// Back to a fresh connection's state (RESET).
    pub fn reset(&mut self) {
        self.refresh();
        self.user = DEFAULT_USER.to_string();
        self.authenticated = self.users.get(DEFAULT_USER).is_some_and(User::needs_no_password);
    }

    /// Takes the users' latest state if they changed.
    fn refresh(&mut self) {
        if self.updates.has_changed().unwrap_or(false) {
            self.users = effective(&self.updates.borrow_and_update(), &self.local);
            self.open = !self.users.is_configured();
        }
    }

    /// AUTH: logs in as `user` (`default` when none) with `password`; counted when refused.
    pub fn log_in(&mut self, user: Option<&[u8]>, password: &[u8]) -> Result<(), Frame> {
        self.refresh();
        let name = user.map_or(DEFAULT_USER.into(), String::from_utf8_lossy);
        if self.users.authenticate(&name, password).is_some() {
            self.user = name.into_owned();
            self.authenticated = true;
            return Ok(());
        }
        self.stats.denied_auth.fetch_add(1, Ordering::Relaxed);
        Err(Frame::error("WRONGPASS invalid username-password pair or user is disabled."))
    }

    /// Whether AUTH with a password only would be answered that no password is configured.
    pub fn default_needs_no_password(&mut self) -> bool {
        self.refresh();
        self.users.get(DEFAULT_USER).is_some_and(User::needs_no_password)
    }

    /// Whether the connection is logged in.
    pub fn is_authenticated(&mut self) -> bool {
        self.refresh();
        self.authenticated || self.open
    }

    /// The users as the connection sees them now.
    pub fn users(&mut self) -> Arc<AclUsers> {
        self.refresh();
        Arc::clone(&self.users)
    }

    /// The check of a request (`args`, name first) before it runs or is queued.
    pub fn check(&mut self, args: &[Bytes]) -> Result<(), Refusal> {
        self.refresh();
        if self.open {
            return Ok(());
        }
        // An unknown command or a wrong number of arguments is answered as such first, as
        // Redis answers it; such a request runs nothing.
        let Some(spec) = args.first().and_then(|name| lookup(name)).filter(|s| s.arity_ok(args.len())) else {
            return Ok(());
        };
        // AUTH, HELLO, QUIT and RESET run whoever the connection is: it may always log in
        // again or leave.
        if spec.flags.contains(&"no_auth") {
            return Ok(());
        }
        if !self.authenticated {
            return Err(Refusal::NoAuth);
        }
        let Some(user) = self.users.get(&self.user) else { return Err(Refusal::UserGone) };
        let sub = subcommand(spec, args);
        let facts = CommandFacts {
            name: spec.name,
            subcommand: sub.as_deref(),
            categories: categories(spec, sub.as_deref()),
        };
        if !user.may_run(&facts) {
            self.stats.denied_cmd.fetch_add(1, Ordering::Relaxed);
            let full = sub.map_or_else(|| spec.name.to_string(), |sub| format!("{}|{sub}", spec.name));
            return Err(Refusal::Command(full));
        }
        if !command_keys(spec, args).into_iter().all(|(key, access)| user.may_access(key, access)) {
            self.stats.denied_key.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Key);
        }
        if !command_channels(spec, args)
            .into_iter()
            .all(|(channel, pattern)| user.may_use_channel(channel, pattern))
        {
            self.stats.denied_channel.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Channel);
        }
        Ok(())
    }

    /// Waits until the users change (forever, if they no longer can), and takes their new
    /// state: a subscribed connection then checks it may keep its subscriptions.
    pub async fn users_changed(&mut self) {
        if self.updates.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        self.users = effective(&self.updates.borrow_and_update(), &self.local);
        self.open = !self.users.is_configured();
    }

    /// Whether the connection's user may still hold its `subscriptions` (each a channel or
    /// shard channel, or with `true` a pattern): Redis closes a subscriber whose user lost one
    /// of them, or was deleted.
    pub fn may_keep<'a>(&mut self, mut subscriptions: impl Iterator<Item = (&'a [u8], bool)>) -> bool {
        self.refresh();
        if self.open {
            return true;
        }
        let Some(user) = self.users.get(&self.user) else { return false };
        subscriptions.all(|(channel, pattern)| user.may_use_channel(channel, pattern))
    }

    /// The permissions a script of this connection's user runs with: `None` when the user may
    /// use every command and key (or no ACL is configured), so an unrestricted call carries
    /// nothing.
    pub fn script_access(&mut self) -> Option<ScriptAccess> {
        self.refresh();
        if self.open {
            return None;
        }
        let user = self.users.get(&self.user)?;
        if user.is_unrestricted() {
            return None;
        }
        Some(ScriptAccess { user: self.user.as_bytes().to_vec(), rules: user.rules() })
    }

    /// The error frame of `refusal`, worded as Redis 7 words it.
    pub fn refusal_frame(&self, refusal: &Refusal) -> Frame {
        match refusal {
            Refusal::NoAuth => Frame::error("NOAUTH Authentication required."),
            Refusal::UserGone => Frame::error("NOAUTH Authentication required."),
            Refusal::Command(name) => Frame::error(format!(
                "NOPERM User {} has no permissions to run the '{name}' command",
                self.user
            )),
            Refusal::Key => Frame::error("NOPERM No permissions to access a key"),
            Refusal::Channel => Frame::error("NOPERM No permissions to access a channel"),
        }
    }
}
