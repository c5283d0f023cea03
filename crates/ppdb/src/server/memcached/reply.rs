//! The reply writer of memcached's text protocol: lines ending in `\r\n`, and item values as
//! `VALUE` (get) or `VA` (meta) headers followed by their data block.

use super::request::MetaFlags;
use crate::kv::memcached::McItem;
use std::fmt::Write as _;

/// Appends one line and its `\r\n`.
pub fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a data block and its `\r\n`.
fn data(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends an item as get and gets show it: `VALUE <key> <flags> <bytes> [<cas>]`, then the
/// data.
pub fn value(out: &mut Vec<u8>, key: &[u8], item: &McItem, with_cas: bool) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    let mut header = format!(" {} {}", item.flags, item.value.len());
    if with_cas {
        let _ = write!(header, " {}", item.cas);
    }
    line(out, &header);
    data(out, &item.value);
}

/// The return flags of a meta reply, in request order, as ` f12 c3 kkey`: what `item` (if
/// any) and the request give; `letters` limits which are shown.
fn return_flags(key: &[u8], flags: &MetaFlags, item: Option<&McItem>, letters: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (letter, opaque) in flags.returned.iter().filter(|(l, _)| letters.contains(l)) {
        let shown = match (letter, item) {
            (b'k', _) => Some(key.to_vec()),
            (b'O', _) => Some(opaque.clone()),
            (b'c', Some(item)) => Some(item.cas.to_string().into_bytes()),
            (b'f', Some(item)) => Some(item.flags.to_string().into_bytes()),
            (b's', Some(item)) => Some(item.value.len().to_string().into_bytes()),
            (b't', Some(item)) => Some(item.ttl_s.to_string().into_bytes()),
            _ => None,
        };
        if let Some(shown) = shown {
            out.push(b' ');
            out.push(*letter);
            out.extend_from_slice(&shown);
        }
    }
    out
}

/// Appends a meta reply: `code` and its return flags, and with `value` the data (`VA`).
pub fn meta(
    out: &mut Vec<u8>,
    code: &str,
    key: &[u8],
    flags: &MetaFlags,
    item: Option<&McItem>,
    letters: &[u8],
) {
    let shown = return_flags(key, flags, item, letters);
    match item.filter(|_| flags.value) {
        Some(item) => {
            out.extend_from_slice(format!("VA {}", item.value.len()).as_bytes());
            out.extend_from_slice(&shown);
            out.extend_from_slice(b"\r\n");
            data(out, &item.value);
        }
        None => {
            out.extend_from_slice(code.as_bytes());
            out.extend_from_slice(&shown);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> McItem {
        McItem { value: b"hi".to_vec(), flags: 5, cas: 37, ttl_s: -1 }
    }

    #[test]
    fn values_read_as_memcached_writes_them() {
        let mut out = Vec::new();
        value(&mut out, b"k", &item(), false);
        value(&mut out, b"k", &item(), true);
        line(&mut out, "END");
        assert_eq!(out, b"VALUE k 5 2\r\nhi\r\nVALUE k 5 2 37\r\nhi\r\nEND\r\n");
    }

    #[test]
    fn meta_replies_show_their_flags_in_request_order() {
        let returned = [b't', b'f', b'c', b'k', b's', b'O']
            .map(|l| (l, if l == b'O' { b"ab".to_vec() } else { vec![] }));
        let flags = MetaFlags { returned: returned.to_vec(), value: true, ..MetaFlags::default() };
        let mut out = Vec::new();
        meta(&mut out, "HD", b"a", &flags, Some(&item()), b"tfcksO");
        meta(&mut out, "EN", b"a", &flags, None, b"kO");
        meta(&mut out, "HD", b"a", &MetaFlags::default(), Some(&item()), b"");
        assert_eq!(out, b"VA 2 t-1 f5 c37 ka s2 Oab\r\nhi\r\nEN ka Oab\r\nHD\r\n".to_vec());
    }
}
