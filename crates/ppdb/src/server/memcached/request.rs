//! The requests of memcached's text protocol, as the parser hands them over.

use crate::kv::memcached::StoreMode;

/// What `stats` is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// `stats`: the general counters.
    General,
    /// `stats settings`.
    Settings,
    /// `stats items`.
    Items,
}

/// The flags of a meta command (`mg`, `ms`, `md`, `ma`), as memcached 1.6 defines them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFlags {
    /// Return flags in request order, each a letter (`c`, `f`, `k`, `O`, `s`, `t`), the opaque
    /// token's text kept with `O`.
    pub returned: Vec<(u8, Vec<u8>)>,
    /// `v`: return the value.
    pub value: bool,
    /// `q`: say nothing on the common outcome (a miss for `mg`, success for the others).
    pub quiet: bool,
    /// `C`: compare the cas unique.
    pub compare_cas: Option<u64>,
    /// `T`: a new time to live (exptime).
    pub ttl: Option<i64>,
    /// `F`: client flags (`ms`).
    pub client_flags: Option<u32>,
    /// `M`: the mode of `ms` (`S`, `E`, `A`, `P`, `R`) or `ma` (`I`, `+`, `D`, `-`).
    pub mode: Option<u8>,
    /// `N`: create a missing item with this time to live (`ma`).
    pub vivify_ttl: Option<i64>,
    /// `J`: the initial value of an item `ma` creates.
    pub initial: Option<u64>,
    /// `D`: the delta of `ma`.
    pub delta: Option<u64>,
}

/// One request of the text protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// set, add, replace, append, prepend and cas.
    Store {
        /// Which command.
        mode: StoreMode,
        /// The key.
        key: Vec<u8>,
        /// Client flags.
        flags: u32,
        /// exptime as given.
        exptime: i64,
        /// The data block.
        value: Vec<u8>,
        /// `cas`'s unique.
        cas: Option<u64>,
        /// `noreply`.
        noreply: bool,
    },
    /// get, gets, gat and gats.
    Get {
        /// The keys, in order.
        keys: Vec<Vec<u8>>,
        /// gets/gats: show the cas unique.
        with_cas: bool,
        /// gat/gats: the new exptime.
        touch: Option<i64>,
    },
    /// delete.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// `noreply`.
        noreply: bool,
    },
    /// incr and decr.
    Delta {
        /// The key.
        key: Vec<u8>,
        /// decr.
        decrement: bool,
        /// The amount.
        delta: u64,
        /// `noreply`.
        noreply: bool,
    },
    /// touch.
    Touch {
        /// The key.
        key: Vec<u8>,
        /// The new exptime.
        exptime: i64,
        /// `noreply`.
        noreply: bool,
    },
    /// flush_all.
    FlushAll {
        /// Delay as an exptime (0: now).
        delay: i64,
        /// `noreply`.
        noreply: bool,
    },
    /// version.
    Version,
    /// verbosity.
    Verbosity {
        /// `noreply`.
        noreply: bool,
    },
    /// quit: close the connection.
    Quit,
    /// stats.
    Stats(StatsGroup),
    /// mg.
    MetaGet {
        /// The key.
        key: Vec<u8>,
        /// Its flags.
        flags: MetaFlags,
    },
    /// ms.
    MetaSet {
        /// The key.
        key: Vec<u8>,
        /// The data block.
        value: Vec<u8>,
        /// Its flags.
        flags: MetaFlags,
    },
    /// md.
    MetaDelete {
        /// The key.
        key: Vec<u8>,
        /// Its flags.
        flags: MetaFlags,
    },
    /// ma.
    MetaArithmetic {
        /// The key.
        key: Vec<u8>,
        /// Its flags.
        flags: MetaFlags,
    },
    /// mn: answers `MN`, marking the end of a batch of quiet requests.
    MetaNoop,
    /// me: the item's debug line.
    MetaDebug {
        /// The key.
        key: Vec<u8>,
    },
}
