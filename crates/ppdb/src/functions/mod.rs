//! Redis 7 function libraries (FUNCTION LOAD, FCALL): the registry every node holds, and the
//! changes to it that the meta group replicates.
//!
//! This module is pure, like `acl`: no Lua, no clock, no I/O. A library is kept as its source
//! and what loading it registered (its functions' names, flags and descriptions), which the
//! node that received FUNCTION LOAD found by running the source (`server::script::function`);
//! applying a change here only checks names and conflicts, with Redis's words, so every replica
//! of the meta group holds the same registry. The registry is what FCALL looks a function up
//! in; an FCALL's log entry then carries the library's source itself, so a shard runs the code
//! the entry names whatever the registry holds when the entry is applied.

pub mod dump;
pub mod metadata;

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Decoder, Encoder};

/// The largest library source, in bytes (as a script body: `kv::SCRIPT_BODY_BYTES_MAX`).
pub const LIBRARY_SOURCE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The most libraries a cluster keeps.
pub const LIBRARIES_MAX: usize = 1024;
/// The most functions one library registers.
pub const FUNCTIONS_PER_LIBRARY_MAX: usize = 1024;
/// The most source bytes of all libraries together.
pub const LIBRARIES_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The longest function or library name, in bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// The longest function description, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 4096;

/// A function's flags, as `redis.register_function` takes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionFlags(pub u8);

impl FunctionFlags {
    /// `no-writes`: the function may not write; FCALL_RO may call it.
    pub const NO_WRITES: u8 = 1;
    /// Every flag, by its name, in the order FUNCTION LIST shows them.
    pub const NAMES: [(u8, &'static str); 5] = [
        (1, "no-writes"),
        (2, "allow-oom"),
        (4, "allow-stale"),
        (8, "no-cluster"),
        (16, "allow-cross-slot-keys"),
    ];

    /// The flag named `name`, if any.
    pub fn bit(name: &[u8]) -> Option<u8> {
        Self::NAMES.iter().find(|(_, n)| n.as_bytes() == name).map(|(bit, _)| *bit)
    }

    /// Whether the function may not write.
    pub fn no_writes(self) -> bool {
        self.0 & Self::NO_WRITES != 0
    }

    /// The names of the flags set, in FUNCTION LIST's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(bit, _)| self.0 & bit != 0).map(|(_, name)| name)
    }
}

/// One function a library registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// Its name, unique in the cluster.
    pub name: String,
    /// The description given to `redis.register_function`, if any.
    pub description: Option<Vec<u8>>,
    /// Its flags.
    pub flags: FunctionFlags,
}

/// A loaded library: its source and the functions loading it registered (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// The name its `#!lua name=...` line gives.
    pub name: String,
    /// The source, shebang line included (FUNCTION LIST WITHCODE, FUNCTION DUMP).
    pub source: Vec<u8>,
    /// Its functions, by name.
    pub functions: Vec<FunctionInfo>,
}

/// Why a change to the registry is refused, in Redis's words (nothing of it is applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// FUNCTION LOAD without REPLACE of a library that exists.
    #[error("Library '{0}' already exists")]
    LibraryExists(String),
    /// FUNCTION RESTORE (APPEND) of a library that exists.
    #[error("Library {0} already exists")]
    RestoredLibraryExists(String),
    /// A function name another library registered.
    #[error("Function {0} already exists")]
    FunctionExists(String),
    /// FUNCTION DELETE of an unknown library.
    #[error("Library not found")]
    LibraryNotFound,
    /// A library without functions.
    #[error("No functions registered")]
    NoFunctions,
    /// Past [`LIBRARIES_MAX`] or [`LIBRARIES_BYTES_MAX`].
    #[error("too many function libraries (at most {LIBRARIES_MAX}, {LIBRARIES_BYTES_MAX} bytes of source)")]
    TooMany,
}

/// FUNCTION RESTORE's policy towards the libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Delete every library first.
    Flush,
    /// Add the payload's libraries; a name already loaded refuses the whole restore.
    Append,
    /// Replace the libraries of the same names.
    Replace,
}

/// A change to the registry, as one meta group entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionChange {
    /// FUNCTION LOAD \[REPLACE\].
    Load {
        /// The library, as loading its source described it.
        library: Library,
        /// Whether a library of the same name is replaced.
        replace: bool,
    },
    /// FUNCTION DELETE.
    Delete {
        /// The library's name.
        name: String,
    },
    /// FUNCTION FLUSH.
    Flush,
    /// FUNCTION RESTORE.
    Restore {
        /// The payload's libraries.
        libraries: Vec<Library>,
        /// What happens to the loaded ones.
        policy: RestorePolicy,
    },
}

/// Every library of the cluster, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Libraries {
    libraries: BTreeMap<String, Library>,
}

impl Libraries {
    /// No library.
    pub const fn new() -> Libraries {
        Libraries { libraries: BTreeMap::new() }
    }

    /// The library named `name`.
    pub fn get(&self, name: &str) -> Option<&Library> {
        self.libraries.get(name)
    }

    /// Every library, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// The function named `name` (case-sensitive, as Redis's) and its library.
    pub fn function(&self, name: &[u8]) -> Option<(&Library, &FunctionInfo)> {
        self.libraries.values().find_map(|library| {
            library.functions.iter().find(|f| f.name.as_bytes() == name).map(|f| (library, f))
        })
    }

    /// How many functions all libraries hold.
    pub fn function_count(&self) -> usize {
        self.libraries.values().map(|l| l.functions.len()).sum()
    }

    /// Applies `change`, all of it or nothing.
    pub fn apply(&mut self, change: &FunctionChange) -> Result<(), FunctionError> {
        let mut next = self.clone();
        match change {
            FunctionChange::Load { library, replace } => {
                if next.libraries.contains_key(&library.name) && !replace {
                    return Err(FunctionError::LibraryExists(library.name.clone()));
                }
                next.libraries.remove(&library.name);
                next.add(library, FunctionError::FunctionExists)?;
            }
            FunctionChange::Delete { name } => {
                next.libraries.remove(name).ok_or(FunctionError::LibraryNotFound)?;
            }
            FunctionChange::Flush => next.libraries.clear(),
            FunctionChange::Restore { libraries, policy } => {
                if *policy == RestorePolicy::Flush {
                    next.libraries.clear();
                }
                for library in libraries {
                    if next.libraries.contains_key(&library.name) && *policy != RestorePolicy::Replace {
                        return Err(FunctionError::RestoredLibraryExists(library.name.clone()));
                    }
                    next.libraries.remove(&library.name);
                }
                for library in libraries {
                    next.add(library, FunctionError::FunctionExists)?;
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// Adds `library`, whose name is free, unless one of its functions' names is taken.
    fn add(&mut self, library: &Library, taken: fn(String) -> FunctionError) -> Result<(), FunctionError> {
        if library.functions.is_empty() {
            return Err(FunctionError::NoFunctions);
        }
        if let Some(f) = library.functions.iter().find(|f| self.function(f.name.as_bytes()).is_some()) {
            return Err(taken(f.name.clone()));
        }
        let bytes: usize = self.libraries.values().map(|l| l.source.len()).sum();
        if self.libraries.len() >= LIBRARIES_MAX || bytes + library.source.len() > LIBRARIES_BYTES_MAX {
            return Err(FunctionError::TooMany);
        }
        self.libraries.insert(library.name.clone(), library.clone());
        Ok(())
    }

    /// Writes every library (for the meta group's snapshot).
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(u32::try_from(self.libraries.len()).unwrap_or(u32::MAX));
        for library in self.libraries.values() {
            library.encode(e);
        }
    }

    /// Reads libraries written by [`Libraries::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<Libraries, DecodeError> {
        let count = d.count(LIBRARIES_MAX, 12)?;
        let mut libraries = BTreeMap::new();
        for _ in 0..count {
            let library = Library::decode(d)?;
            libraries.insert(library.name.clone(), library);
        }
        Ok(Libraries { libraries })
    }
}

impl Library {
    fn encode(&self, e: &mut Encoder) {
        e.bytes(self.name.as_bytes());
        e.bytes(&self.source);
        e.u32(u32::try_from(self.functions.len()).unwrap_or(u32::MAX));
        for function in &self.functions {
            e.bytes(function.name.as_bytes());
            e.u8(function.flags.0);
            match &function.description {
                Some(text) => {
                    e.u8(1);
                    e.bytes(text);
                }
                None => e.u8(0),
            }
        }
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Library, DecodeError> {
        let name = decode_name(d)?;
        let source = d.bytes(LIBRARY_SOURCE_BYTES_MAX)?.to_vec();
        let count = d.count(FUNCTIONS_PER_LIBRARY_MAX, 6)?;
        let mut functions = Vec::with_capacity(count);
        for _ in 0..count {
            let name = decode_name(d)?;
            let flags = FunctionFlags(d.u8()?);
            let description = match d.u8()? {
                0 => None,
                1 => Some(d.bytes(DESCRIPTION_BYTES_MAX)?.to_vec()),
                _ => return Err(d.error("bad function description tag")),
            };
            functions.push(FunctionInfo { name, description, flags });
        }
        Ok(Library { name, source, functions })
    }
}

fn decode_name(d: &mut Decoder<'_>) -> Result<String, DecodeError> {
    let name = d.bytes(NAME_BYTES_MAX)?;
    match std::str::from_utf8(name) {
        Ok(text) if metadata::valid_name(name) => Ok(text.to_owned()),
        _ => Err(d.error("bad function or library name")),
    }
}

impl FunctionChange {
    /// Writes the change into `e`.
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            FunctionChange::Load { library, replace } => {
                e.u8(1);
                e.u8(u8::from(*replace));
                library.encode(e);
            }
            FunctionChange::Delete { name } => {
                e.u8(2);
                e.bytes(name.as_bytes());
            }
            FunctionChange::Flush => e.u8(3),
            FunctionChange::Restore { libraries, policy } => {
                e.u8(4);
                e.u8(match policy {
                    RestorePolicy::Flush => 0,
                    RestorePolicy::Append => 1,
                    RestorePolicy::Replace => 2,
                });
                e.u32(u32::try_from(libraries.len()).unwrap_or(u32::MAX));
                for library in libraries {
                    library.encode(e);
                }
            }
        }
    }

    /// Reads a change written by [`FunctionChange::encode`].
    pub fn decode(d: &mut Decoder<'_>) -> Result<FunctionChange, DecodeError> {
        Ok(match d.u8()? {
            1 => {
                let replace = match d.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(d.error("bad REPLACE flag")),
                };
                FunctionChange::Load { library: Library::decode(d)?, replace }
            }
            2 => FunctionChange::Delete { name: decode_name(d)? },
            3 => FunctionChange::Flush,
            4 => {
                let policy = match d.u8()? {
                    0 => RestorePolicy::Flush,
                    1 => RestorePolicy::Append,
                    2 => RestorePolicy::Replace,
                    _ => return Err(d.error("bad restore policy")),
                };
                let count = d.count(LIBRARIES_MAX, 12)?;
                let libraries = (0..count).map(|_| Library::decode(d)).collect::<Result<_, _>>()?;
                FunctionChange::Restore { libraries, policy }
            }
            _ => return Err(d.error("unknown function change")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn library(name: &str, functions: &[&str]) -> Library {
        Library {
            name: name.into(),
            source: format!("#!lua name={name}\n").into_bytes(),
            functions: functions
                .iter()
                .map(|f| FunctionInfo {
                    name: (*f).into(),
                    description: None,
                    flags: FunctionFlags::default(),
                })
                .collect(),
        }
    }

    fn load(library: Library, replace: bool) -> FunctionChange {
        FunctionChange::Load { library, replace }
    }

    #[test]
    fn changes_apply_whole_or_not_at_all_with_redis_words() {
        let mut registry = Libraries::default();
        registry.apply(&load(library("a", &["f", "g"]), false)).expect("loads");
        let refused = registry.apply(&load(library("a", &["h"]), false)).map_err(|e| e.to_string());
        assert_eq!(refused, Err("Library 'a' already exists".into()));
        let refused = registry.apply(&load(library("b", &["x", "g"]), false)).map_err(|e| e.to_string());
        assert_eq!(refused, Err("Function g already exists".into()));
        assert!(registry.get("b").is_none(), "nothing of a refused change applies");
        registry.apply(&load(library("a", &["h"]), true)).expect("replaces");
        assert!(registry.function(b"f").is_none() && registry.function(b"h").is_some());
        assert_eq!(registry.apply(&load(library("c", &[]), false)), Err(FunctionError::NoFunctions));
        assert_eq!(
            registry.apply(&FunctionChange::Delete { name: "zz".into() }),
            Err(FunctionError::LibraryNotFound)
        );
        let restore = |policy| FunctionChange::Restore { libraries: vec![library("a", &["r"])], policy };
        assert_eq!(
            registry.apply(&restore(RestorePolicy::Append)).map_err(|e| e.to_string()),
            Err("Library a already exists".into())
        );
        registry.apply(&restore(RestorePolicy::Replace)).expect("replaces");
        assert!(registry.function(b"r").is_some() && registry.function(b"h").is_none());
        registry.apply(&load(library("b", &["x"]), false)).expect("loads");
        registry.apply(&restore(RestorePolicy::Flush)).expect("flushes first");
        assert!(registry.get("b").is_none() && registry.function_count() == 1);
        registry.apply(&FunctionChange::Flush).expect("flushes");
        assert_eq!(registry, Libraries::default());
    }

    #[test]
    fn changes_and_registries_round_trip() {
        let mut described = library("lib_1", &["f"]);
        described.functions[0].description = Some(b"does f".to_vec());
        described.functions[0].flags = FunctionFlags(FunctionFlags::NO_WRITES | 16);
        let mut registry = Libraries::default();
        for change in [
            load(described, false),
            FunctionChange::Restore { libraries: vec![library("x", &["y"])], policy: RestorePolicy::Append },
            FunctionChange::Delete { name: "x".into() },
            FunctionChange::Flush,
            load(library("z", &["q"]), true),
        ] {
            let mut e = Encoder::default();
            change.encode(&mut e);
            let bytes = e.finish();
            let mut d = Decoder::new(&bytes, "test");
            assert_eq!(FunctionChange::decode(&mut d).as_ref(), Ok(&change));
            assert_eq!(d.remaining(), 0);
            registry.apply(&change).expect("applies");
        }
        let mut e = Encoder::default();
        registry.encode(&mut e);
        let bytes = e.finish();
        assert_eq!(Libraries::decode(&mut Decoder::new(&bytes, "test")), Ok(registry));
        assert_eq!(FunctionFlags(17).names().collect::<Vec<_>>(), ["no-writes", "allow-cross-slot-keys"]);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FunctionChange::decode(&mut Decoder::new(&bytes, "fuzz"));
            let _ = Libraries::decode(&mut Decoder::new(&bytes, "fuzz"));
        }
    }
}
