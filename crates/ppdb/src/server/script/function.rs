//! The FUNCTION command's answers: LOAD, DELETE, FLUSH and RESTORE change the cluster's
//! function libraries through the meta group; LIST, DUMP and STATS read them as this node
//! applied them.
//!
//! LOAD (and RESTORE) first runs each library's code on this node, with the loading
//! environment and the instruction budget scripts have, to find what it registers and refuse
//! it with Redis's words; only the library's source and that description go to the meta group.
//! A change's reply waits until this node applied it, so the client that loaded a library can
//! call it at once through the node it is connected to; other nodes know it once they applied
//! the meta group's entry, a heartbeat later.

use std::time::Duration;

use bytes::Bytes;

use super::engine::ScriptEngine;
use crate::error::Error;
use crate::functions::{dump, FunctionChange, Libraries, Library};
use crate::kv::glob::glob_match;
use crate::node::DirectoryCommand;
use crate::server::context::ServerContext;
use crate::server::resp::command::FunctionCommand;
use crate::server::resp::Frame;

/// Longest wait for this node to apply a change the meta leader committed.
const APPLIED_WAIT: Duration = Duration::from_secs(2);

/// Answers a FUNCTION subcommand.
pub async fn function_reply(ctx: &ServerContext, function: FunctionCommand) -> Frame {
    let libraries = ctx.report.membership.functions();
    match function {
        FunctionCommand::Load { replace, source } => match describe(&source) {
            Ok(library) => {
                let name = library.name.clone();
                match change(ctx, FunctionChange::Load { library, replace }).await {
                    Ok(()) => Frame::bulk(name.as_bytes()),
                    Err(frame) => frame,
                }
            }
            Err(text) => Frame::error(text),
        },
        FunctionCommand::Delete(name) => {
            let name = String::from_utf8_lossy(&name).into_owned();
            if libraries.get(&name).is_none() {
                return Frame::error("ERR Library not found");
            }
            change(ctx, FunctionChange::Delete { name })
                .await
                .map_or_else(|frame| frame, |()| Frame::simple("OK"))
        }
        FunctionCommand::Flush => {
            change(ctx, FunctionChange::Flush).await.map_or_else(|frame| frame, |()| Frame::simple("OK"))
        }
        FunctionCommand::Restore { payload, policy } => match restored(&payload) {
            Ok(libraries) => change(ctx, FunctionChange::Restore { libraries, policy })
                .await
                .map_or_else(|frame| frame, |()| Frame::simple("OK")),
            Err(text) => Frame::error(text),
        },
        FunctionCommand::List { with_code, pattern } => list(&libraries, with_code, pattern.as_deref()),
        FunctionCommand::Dump => {
            Frame::Bulk(Bytes::from(dump::encode(libraries.iter().map(|l| l.source.as_slice()))))
        }
        FunctionCommand::Stats => stats(&libraries),
    }
}

/// What loading `source` registers, or Redis's error.
fn describe(source: &[u8]) -> Result<Library, String> {
    let library = ScriptEngine::default().describe_library(source)?;
    if library.functions.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(library)
}

/// The libraries of a FUNCTION DUMP payload, each loaded as FUNCTION LOAD loads it.
fn restored(payload: &[u8]) -> Result<Vec<Library>, String> {
    let sources = dump::decode(payload).map_err(|e| format!("ERR {e}"))?;
    let mut libraries: Vec<Library> = Vec::with_capacity(sources.len());
    for source in sources {
        let library = describe(&source)?;
        if libraries.iter().any(|l| l.name == library.name) {
            return Err(format!("ERR Library '{}' already exists", library.name));
        }
        libraries.push(library);
    }
    Ok(libraries)
}

/// Proposes `change` to the meta group and waits until this node applied it.
async fn change(ctx: &ServerContext, change: FunctionChange) -> Result<(), Frame> {
    let membership = &ctx.report.membership;
    let mut expected = Libraries::clone(&membership.functions());
    if let Err(e) = expected.apply(&change) {
        return Err(Frame::error(format!("ERR {e}")));
    }
    match membership.submit(DirectoryCommand::Functions(change)).await {
        Ok(_) => {
            let mut updates = membership.directory_updates();
            let applied = updates.wait_for(|d| **d.functions() == expected);
            let _ = tokio::time::timeout(APPLIED_WAIT, applied).await;
            Ok(())
        }
        Err(Error::State(reason)) => Err(Frame::error(format!("ERR {reason}"))),
        Err(e) => Err(Frame::error(format!("ERR cannot record the function change: {e}"))),
    }
}

/// FUNCTION LIST's reply: the libraries whose names match `pattern` (case-insensitive).
fn list(libraries: &Libraries, with_code: bool, pattern: Option<&[u8]>) -> Frame {
    let text = |s: &str| Frame::bulk(s.as_bytes());
    let matches = |name: &str| {
        pattern.is_none_or(|p| glob_match(&p.to_ascii_lowercase(), name.to_ascii_lowercase().as_bytes()))
    };
    let listed = libraries.iter().filter(|library| matches(&library.name)).map(|library| {
        let functions = library.functions.iter().map(|f| {
            Frame::Map(vec![
                (text("name"), text(&f.name)),
                (
                    text("description"),
                    f.description.clone().map_or(Frame::Null, |d| Frame::Bulk(Bytes::from(d))),
                ),
                (text("flags"), Frame::Set(f.flags.names().map(Frame::simple).collect())),
            ])
        });
        let mut fields = vec![
            (text("library_name"), text(&library.name)),
            (text("engine"), text("LUA")),
            (text("functions"), Frame::Array(functions.collect())),
        ];
        if with_code {
            fields.push((text("library_code"), Frame::Bulk(Bytes::from(library.source.clone()))));
        }
        Frame::Map(fields)
    });
    Frame::Array(listed.collect())
}

/// FUNCTION STATS' reply: no script runs outside its entry; the counts of the Lua engine.
fn stats(libraries: &Libraries) -> Frame {
    let text = |s: &str| Frame::bulk(s.as_bytes());
    let counts = Frame::Map(vec![
        (text("libraries_count"), Frame::Integer(libraries.iter().count() as i64)),
        (text("functions_count"), Frame::Integer(libraries.function_count() as i64)),
    ]);
    Frame::Map(vec![
        (text("running_script"), Frame::Null),
        (text("engines"), Frame::Map(vec![(text("LUA"), counts)])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_describes_what_a_library_registers_or_refuses_it_as_redis() {
        let source = b"#!lua name=mylib\nlocal function f(keys, args) return 1 end\n\
            redis.register_function('zeta', f)\n\
            redis.register_function{function_name='alpha', callback=f, flags={'no-writes', 'no-writes'}, description='d'}";
        let library = describe(source).expect("loads");
        assert_eq!(library.name, "mylib");
        let names: Vec<_> = library.functions.iter().map(|f| (f.name.as_str(), f.flags.0)).collect();
        assert_eq!(names, [("alpha", 1), ("zeta", 0)]);
        assert_eq!(library.functions[0].description.as_deref(), Some(&b"d"[..]));
        // Texts from redis-server 7.0.15.
        for (code, text) in [
            ("return 1", "ERR No functions registered"),
            ("redis.call('set','a','b')", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"),
            ("local x = KEYS", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'KEYS'"),
            ("redis.register_function('a b', function() end)", "ERR Error registering functions: ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
            ("redis.register_function('a', 1)", "ERR Error registering functions: ERR second argument to redis.register_function must be a function"),
            ("redis.register_function{function_name='a', callback=function() end, flags={'bad'}}", "ERR Error registering functions: ERR unknown flag given"),
            ("redis.register_function{callback=function() end}", "ERR Error registering functions: ERR redis.register_function must get a function name argument"),
            ("redis.register_function{function_name='q', callback=function() end, foo=1}", "ERR Error registering functions: ERR unknown argument given to redis.register_function"),
            ("redis.register_function{function_name='q', callback=function() end, flags='no-writes'}", "ERR Error registering functions: ERR flags argument to redis.register_function must be a table representing function flags"),
            ("redis.register_function('a', function() end)\nredis.register_function('a', function() end)", "ERR Error registering functions: ERR Function already exists in the library"),
            ("syntax error", "ERR Error compiling function: user_function:2: '=' expected near 'error'"),
        ] {
            let source = format!("#!lua name=x\n{code}");
            assert_eq!(describe(source.as_bytes()).map(|l| l.name), Err(text.to_owned()), "{code}");
        }
        assert_eq!(describe(b"#!lua name=x").map(|l| l.name), Err("ERR Invalid library metadata".into()));
    }

    #[test]
    fn a_dump_restores_the_libraries_it_holds() {
        let source = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)".to_vec();
        let payload = dump::encode([source.as_slice()]);
        let restored = restored(&payload).expect("restores");
        assert_eq!((restored.len(), restored[0].name.as_str()), (1, "lib"));
        let twice = dump::encode([source.as_slice(), source.as_slice()]);
        assert_eq!(restored_names(&twice), Err("ERR Library 'lib' already exists".into()));
        assert_eq!(restored_names(b"x"), Err("ERR DUMP payload version or checksum are wrong".into()));
    }

    fn restored_names(payload: &[u8]) -> Result<Vec<String>, String> {
        restored(payload).map(|libraries| libraries.into_iter().map(|l| l.name).collect())
    }

    #[test]
    fn list_and_stats_answer_in_redis_shape() {
        let mut libraries = Libraries::default();
        let library = describe(b"#!lua name=Lib\nredis.register_function('f', function() return 1 end)")
            .expect("loads");
        libraries.apply(&FunctionChange::Load { library, replace: false }).expect("applies");
        let Frame::Array(listed) = list(&libraries, false, Some(b"l*")) else { panic!("an array") };
        assert_eq!(listed.len(), 1, "LIBRARYNAME matches case-insensitively");
        assert_eq!(list(&libraries, false, Some(b"x*")), Frame::Array(Vec::new()));
        let Frame::Array(listed) = list(&libraries, true, None) else { panic!("an array") };
        let Frame::Map(fields) = &listed[0] else { panic!("a map") };
        assert_eq!(fields.len(), 4, "with the code");
        let Frame::Map(stats) = stats(&libraries) else { panic!("a map") };
        assert_eq!(stats[0], (Frame::bulk(b"running_script"), Frame::Null));
    }
}
