//! Redis's ACL command categories (`+@read`, `-@dangerous`, ...), as a small set.

/// One ACL category, in the order Redis 7 lists them (ACL CAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Writing or reading keys, databases or their metadata in a type-agnostic way.
    Keyspace,
    /// Reading from keys.
    Read,
    /// Writing to keys.
    Write,
    /// Sets.
    Set,
    /// Sorted sets.
    SortedSet,
    /// Lists.
    List,
    /// Hashes.
    Hash,
    /// Strings.
    String,
    /// Bitmaps.
    Bitmap,
    /// HyperLogLogs.
    HyperLogLog,
    /// Geospatial indexes.
    Geo,
    /// Streams.
    Stream,
    /// Pub/sub.
    PubSub,
    /// Administrative commands.
    Admin,
    /// O(1) commands.
    Fast,
    /// Every command that is not fast.
    Slow,
    /// Commands that may block the connection.
    Blocking,
    /// Commands that may be dangerous (administration, O(N) scans of the key space).
    Dangerous,
    /// Commands about the connection.
    Connection,
    /// MULTI, EXEC, WATCH and their kin.
    Transaction,
    /// Lua scripts.
    Scripting,
}

impl Category {
    /// Every category, in ACL CAT's order.
    pub const ALL: [Category; 21] = [
        Category::Keyspace,
        Category::Read,
        Category::Write,
        Category::Set,
        Category::SortedSet,
        Category::List,
        Category::Hash,
        Category::String,
        Category::Bitmap,
        Category::HyperLogLog,
        Category::Geo,
        Category::Stream,
        Category::PubSub,
        Category::Admin,
        Category::Fast,
        Category::Slow,
        Category::Blocking,
        Category::Dangerous,
        Category::Connection,
        Category::Transaction,
        Category::Scripting,
    ];

    /// The name rules use after `@`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Keyspace => "keyspace",
            Category::Read => "read",
            Category::Write => "write",
            Category::Set => "set",
            Category::SortedSet => "sortedset",
            Category::List => "list",
            Category::Hash => "hash",
            Category::String => "string",
            Category::Bitmap => "bitmap",
            Category::HyperLogLog => "hyperloglog",
            Category::Geo => "geo",
            Category::Stream => "stream",
            Category::PubSub => "pubsub",
            Category::Admin => "admin",
            Category::Fast => "fast",
            Category::Slow => "slow",
            Category::Blocking => "blocking",
            Category::Dangerous => "dangerous",
            Category::Connection => "connection",
            Category::Transaction => "transaction",
            Category::Scripting => "scripting",
        }
    }

    /// The category named `name` (ASCII case ignored, as Redis does).
    pub fn from_name(name: &[u8]) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of categories: those of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CategorySet(u32);

impl CategorySet {
    /// The set holding `categories`.
    pub fn of(categories: &[Category]) -> CategorySet {
        CategorySet(categories.iter().fold(0, |bits, c| bits | c.bit()))
    }

    /// Adds `category`.
    pub fn insert(&mut self, category: Category) {
        self.0 |= category.bit();
    }

    /// Whether `category` is in the set.
    pub fn contains(self, category: Category) -> bool {
        self.0 & category.bit() != 0
    }

    /// The categories in the set, in ACL CAT's order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_hold_what_was_put() {
        for category in Category::ALL {
            assert_eq!(Category::from_name(category.name().to_uppercase().as_bytes()), Some(category));
        }
        assert_eq!(Category::from_name(b"nosuch"), None);
        let set = CategorySet::of(&[Category::Read, Category::Fast]);
        assert_eq!(set.iter().collect::<Vec<_>>(), [Category::Read, Category::Fast]);
        assert!(!set.contains(Category::Write));
    }
}
