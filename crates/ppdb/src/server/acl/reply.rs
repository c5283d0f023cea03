//! The ACL command's answers. Changes (SETUSER, DELUSER) go through the meta group, so every
//! node enforces them; the reply waits until this node has applied them too, so the client
//! that made a change sees it at once on the node it is connected to.

use super::command_facts::categories;
use crate::acl::file::requirepass_change;
use crate::acl::rule::CommandSelector;
use crate::acl::{AclChange, AclError, AclUsers, Category, Rule, User};
use crate::error::Error;
use crate::node::DirectoryCommand;
use crate::server::context::ServerContext;
use crate::server::resp::command::table::{lookup, COMMANDS};
use crate::server::resp::command::AclCommand;
use crate::server::resp::Frame;
use crate::server::session::Session;
use bytes::Bytes;
use rand::RngCore;
use std::time::Duration;

/// Longest wait for this node to apply a change the meta leader committed.
const APPLIED_WAIT: Duration = Duration::from_secs(2);

/// ACL HELP's lines.
const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "DELUSER <username> [<username> ...]",
    "GENPASS [<bits>]",
    "GETUSER <username>",
    "LIST",
    "LOG [<count> | RESET]",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "USERS",
    "WHOAMI",
];

/// Answers an ACL subcommand.
pub async fn acl_reply(ctx: &ServerContext, session: &mut Session, command: AclCommand) -> Frame {
    let users = session.auth.users();
    match command {
        AclCommand::SetUser { name, rules } => {
            match set_user_change(&name, &rules)
                .and_then(|change| preview(&users, &name, &rules).map(|()| change))
            {
                Ok(change) => apply(ctx, session, change).await,
                Err(frame) => frame,
            }
        }
        AclCommand::DelUser(names) => {
            let names: Vec<String> = names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
            let existing = names.iter().filter(|n| users.get(n).is_some()).count();
            match apply(ctx, session, AclChange::DeleteUsers { names }).await {
                Frame::Simple(_) => Frame::Integer(existing as i64),
                error => error,
            }
        }
        AclCommand::GetUser(name) => match users.get(&String::from_utf8_lossy(&name)) {
            Some(user) => user_frame(user),
            None => Frame::Null,
        },
        AclCommand::List => {
            Frame::Array(users.iter().map(|(name, user)| Frame::Bulk(list_line(name, user))).collect())
        }
        AclCommand::Users => {
            Frame::Array(users.iter().map(|(name, _)| Frame::bulk(name.as_bytes())).collect())
        }
        AclCommand::WhoAmI => Frame::bulk(session.auth.user_name().as_bytes()),
        AclCommand::Cat(None) => {
            Frame::Array(Category::ALL.iter().map(|c| Frame::bulk(c.name().as_bytes())).collect())
        }
        AclCommand::Cat(Some(name)) => match Category::from_name(&name) {
            Some(category) => Frame::Array(
                COMMANDS
                    .iter()
                    .filter(|spec| categories(spec, None).contains(category))
                    .map(|spec| Frame::bulk(spec.name.as_bytes()))
                    .collect(),
            ),
            None => Frame::error(format!("ERR Unknown category '{}'", String::from_utf8_lossy(&name))),
        },
        AclCommand::GenPass(bits) => {
            let mut random = vec![0u8; bits.div_ceil(8) as usize];
            rand::thread_rng().fill_bytes(&mut random);
            let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
            Frame::Bulk(Bytes::from(hex[..bits.div_ceil(4) as usize].to_string()))
        }
        AclCommand::Log { reset: true } => Frame::simple("OK"),
        AclCommand::Log { reset: false } => Frame::Array(Vec::new()),
        AclCommand::Help => Frame::Array(HELP.iter().map(|line| Frame::simple(line)).collect()),
    }
}

/// CONFIG SET requirepass: the `default` user's only password, for the whole cluster.
pub async fn set_requirepass(ctx: &ServerContext, session: &mut Session, password: &[u8]) -> Frame {
    apply(ctx, session, requirepass_change(password)).await
}

/// ACL SETUSER's change, with its command names checked against the command table.
fn set_user_change(name: &[u8], rules: &[Bytes]) -> Result<AclChange, Frame> {
    for text in rules {
        if let Ok(
            Rule::Allow(CommandSelector::Command(command)) | Rule::Deny(CommandSelector::Command(command)),
        ) = Rule::parse(text)
        {
            let parent = command.split('|').next().unwrap_or_default();
            if lookup(parent.as_bytes()).is_none() {
                return Err(Frame::error(format!(
                    "ERR Error in ACL SETUSER modifier '{}': Unknown command or category name in ACL",
                    String::from_utf8_lossy(text)
                )));
            }
        }
    }
    AclChange::set_user(name, rules).map_err(|e| Frame::error(format!("ERR {e}")))
}

/// Refuses rules that do not apply to the user as it is, naming the rule as the client wrote
/// it (the change holds passwords only as hashes).
fn preview(users: &AclUsers, name: &[u8], rules: &[Bytes]) -> Result<(), Frame> {
    let mut user = users.get(&String::from_utf8_lossy(name)).cloned().unwrap_or_default();
    for text in rules {
        let rule = String::from_utf8_lossy(text).into_owned();
        let applied = Rule::parse(text)
            .map_err(|reason| AclError::Rule { rule: rule.clone(), reason })
            .and_then(|parsed| match user.refuses(&parsed) {
                Some(reason) => Err(AclError::User { rule, reason }),
                None => user.apply(&parsed).map_err(|reason| AclError::User { rule, reason }),
            });
        applied.map_err(|e| Frame::error(format!("ERR {e}")))?;
    }
    Ok(())
}

/// Proposes `change` to the meta group and waits until this node applied it.
async fn apply(ctx: &ServerContext, session: &mut Session, change: AclChange) -> Frame {
    let _ = session;
    let mut expected = AclUsers::clone(ctx.report.membership.directory().users());
    if let Err(e) = expected.apply(&change) {
        return Frame::error(format!("ERR {e}"));
    }
    match ctx.report.membership.submit(DirectoryCommand::Acl(change)).await {
        Ok(_) => {
            let mut updates = ctx.report.membership.directory_updates();
            let applied = updates.wait_for(|d| **d.users() == expected || !d.users().is_configured());
            let _ = tokio::time::timeout(APPLIED_WAIT, applied).await;
            Frame::simple("OK")
        }
        Err(Error::State(reason)) => Frame::error(format!("ERR {reason}")),
        Err(e) => Frame::error(format!("ERR cannot record the ACL change: {e}")),
    }
}

/// ACL LIST's line for one user.
fn list_line(name: &str, user: &User) -> Bytes {
    let mut line = format!("user {name}").into_bytes();
    for rule in user.rules() {
        line.push(b' ');
        line.extend_from_slice(&rule);
    }
    Bytes::from(line)
}

/// ACL GETUSER's answer, in Redis 7's shape.
fn user_frame(user: &User) -> Frame {
    let text = |s: &str| Frame::bulk(s.as_bytes());
    Frame::Map(vec![
        (text("flags"), Frame::Array(user.flags().into_iter().map(text).collect())),
        (text("passwords"), Frame::Array(user.password_hashes().iter().map(|h| text(h)).collect())),
        (text("commands"), text(&user.command_text())),
        (text("keys"), Frame::Bulk(Bytes::from(user.key_text()))),
        (text("channels"), Frame::Bulk(Bytes::from(user.channel_text()))),
        (text("selectors"), Frame::Array(Vec::new())),
    ])
}
