//! Hash slots as Redis Cluster defines them: a key belongs to one of [`SLOT_COUNT`] slots, the
//! CRC16 (XMODEM) of the key modulo 16,384, or of its hash tag when it has one. The tag lets
//! an application keep related keys in one slot, and so in one shard: `{user1}:cart` and
//! `{user1}:orders` hash alike. `CLUSTER KEYSLOT` answers exactly what Redis answers.
//!
//! Pure functions over bytes; which shard owns a slot is [`super::router`]'s business.

/// Number of hash slots (Redis Cluster's 16,384).
pub const SLOT_COUNT: u16 = 16_384;

/// One of the [`SLOT_COUNT`] hash slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId(u16);

impl SlotId {
    /// The first slot.
    pub const FIRST: SlotId = SlotId(0);
    /// The last slot.
    pub const LAST: SlotId = SlotId(SLOT_COUNT - 1);

    /// The slot `key` hashes to.
    pub fn of(key: &[u8]) -> SlotId {
        SlotId(crc16_xmodem(hash_tag(key)) % SLOT_COUNT)
    }

    /// Slot number `n`, if there is one (`n` < [`SLOT_COUNT`]).
    pub fn new(n: u16) -> Option<SlotId> {
        (n < SLOT_COUNT).then_some(SlotId(n))
    }

    /// The slot's number, 0 to 16,383.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The part of `key` that decides its slot: between the first `{` and the first `}` after
/// it, when that is not empty; otherwise the whole key (Redis Cluster's rule: `{}a` and `a{`
/// hash whole, `{a}{b}` hashes `a`, `{{a}}` hashes `{a`).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else { return key };
    let after = &key[open + 1..];
    match after.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &after[..close],
        _ => key,
    }
}

/// CRC16 with the XMODEM parameters Redis Cluster uses (polynomial 0x1021, initial value 0,
/// no reflection, no final xor).
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)])
}

/// The CRC of each leading byte, so the CRC advances a byte at a time.
const CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_xmodem() {
        // The check value of CRC-16/XMODEM, and the one Redis's crc16.c quotes.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn slots_are_those_redis_cluster_answers() {
        // `CLUSTER KEYSLOT` of redis-server 7.0.15 (cluster-enabled, no slots assigned).
        let redis = [
            ("foo", 12182),
            ("bar", 5061),
            ("hello", 866),
            ("", 0),
            ("{user1000}.following", 3443),
            ("{user1000}.followers", 3443),
            ("user1000", 3443),
            ("foo{}{bar}", 8363),
            ("foo{{bar}}zap", 4015),
            ("foo{bar}{zap}", 5061),
            ("{}", 15257),
            ("a{", 14311),
            ("}a{b}", 3300),
        ];
        for (key, slot) in redis {
            assert_eq!(SlotId::of(key.as_bytes()).get(), slot, "KEYSLOT {key:?}");
        }
    }

    #[test]
    fn a_hash_tag_is_the_first_non_empty_braces() {
        assert_eq!(hash_tag(b"{user1}:a"), b"user1");
        assert_eq!(hash_tag(b"x{user1}y{z}"), b"user1");
        assert_eq!(hash_tag(b"{}user1"), b"{}user1");
        assert_eq!(hash_tag(b"{{a}}"), b"{a");
        assert_eq!(hash_tag(b"no-tag"), b"no-tag");
        assert_eq!(hash_tag(b"open{only"), b"open{only");
        assert_eq!(SlotId::of(b"{user1}:a"), SlotId::of(b"{user1}:b"));
    }

    #[test]
    fn every_slot_is_below_the_count() {
        assert_eq!(SlotId::new(SLOT_COUNT), None);
        assert_eq!(SlotId::new(SLOT_COUNT - 1), Some(SlotId::LAST));
        assert!((0..10_000u32).all(|i| SlotId::of(&i.to_le_bytes()).get() < SLOT_COUNT));
    }
}
