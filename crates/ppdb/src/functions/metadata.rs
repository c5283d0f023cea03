//! A library's first line, `#!<engine> name=<library>`, read as Redis 7 reads it, and the
//! names libraries and functions may take.

/// What a library's first line says, and where its code starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The library's name.
    pub name: String,
    /// The offset of the code: the newline ending the first line, so that the code's line
    /// numbers count the first line, as Redis's do.
    pub code_offset: usize,
}

/// Why a library's first line is refused, in Redis's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The source does not start with `#!`.
    #[error("Missing library metadata")]
    Missing,
    /// No newline, or nothing on the first line.
    #[error("Invalid library metadata")]
    Invalid,
    /// `name=` twice.
    #[error("Invalid metadata value, name argument was given multiple times")]
    NameTwice,
    /// A word other than `name=...`.
    #[error("Invalid metadata value given: {0}")]
    UnknownValue(String),
    /// No `name=`.
    #[error("Library name was not given")]
    NoName,
    /// A name with other characters than letters, digits and `_`, or empty.
    #[error("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")]
    BadName,
    /// An engine other than Lua.
    #[error("Engine '{0}' not found")]
    UnknownEngine(String),
}

/// Reads the first line of `source`.
pub fn parse(source: &[u8]) -> Result<Metadata, MetadataError> {
    if !source.starts_with(b"#!") {
        return Err(MetadataError::Missing);
    }
    let end = source.iter().position(|&b| b == b'\n').ok_or(MetadataError::Invalid)?;
    let mut words = source[..end].split(u8::is_ascii_whitespace).filter(|w| !w.is_empty());
    let engine = words.next().ok_or(MetadataError::Invalid)?;
    let engine = &engine[2..];
    let mut name: Option<&[u8]> = None;
    for word in words {
        match word.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case(b"name=") => {
                if name.replace(&word[5..]).is_some() {
                    return Err(MetadataError::NameTwice);
                }
            }
            _ => return Err(MetadataError::UnknownValue(String::from_utf8_lossy(word).into_owned())),
        }
    }
    let name = name.ok_or(MetadataError::NoName)?;
    if !valid_name(name) {
        return Err(MetadataError::BadName);
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(MetadataError::UnknownEngine(String::from_utf8_lossy(engine).into_owned()));
    }
    Ok(Metadata { name: String::from_utf8_lossy(name).into_owned(), code_offset: end })
}

/// Whether `name` may name a library or a function: letters, digits and `_`, at least one,
/// at most [`super::NAME_BYTES_MAX`].
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= super::NAME_BYTES_MAX
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_read_as_redis_7_reads_it() {
        let parsed = parse(b"#!lua name=mylib\nreturn 1").expect("valid");
        assert_eq!(parsed, Metadata { name: "mylib".into(), code_offset: 16 });
        assert_eq!(parse(b"#!LUA  NAME=x_1 \n").map(|m| m.name), Ok("x_1".into()));
        // Texts from redis-server 7.0.15.
        for (source, text) in [
            (&b"return 1"[..], "Missing library metadata"),
            (b"#!lua name=x", "Invalid library metadata"),
            (b"#!\n", "Library name was not given"),
            (b"#!lua name=a name=b\n", "Invalid metadata value, name argument was given multiple times"),
            (b"#!lua name=a foo=bar\n", "Invalid metadata value given: foo=bar"),
            (b"#!lua\n", "Library name was not given"),
            (
                b"#!lua name=bad-name\n",
                "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
            ),
            (b"#!js name=x\n", "Engine 'js' not found"),
        ] {
            assert_eq!(parse(source).map_err(|e| e.to_string()), Err(text.into()), "{source:?}");
        }
    }
}
