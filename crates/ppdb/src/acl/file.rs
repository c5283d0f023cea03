//! The ACL file (`aclfile`), in Redis's syntax: one `user <name> <rule> ...` line per user,
//! each defining the user from scratch. Blank lines and lines starting with `#` are skipped.

use super::rule::PasswordHash;
use super::users::{AclChange, AclError, DEFAULT_USER};

/// Largest ACL file read, in bytes.
pub const ACL_FILE_BYTES_MAX: usize = 1024 * 1024;

/// Why an ACL file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclFileError {
    /// Larger than [`ACL_FILE_BYTES_MAX`].
    #[error("the ACL file is larger than {ACL_FILE_BYTES_MAX} bytes")]
    TooLarge,
    /// A line that does not start with `user <name>`.
    #[error("line {line}: should start with user keyword followed by the username")]
    NotAUser {
        /// Its number, from 1.
        line: usize,
    },
    /// A line whose rules are refused.
    #[error("line {line}: {error}")]
    Rules {
        /// Its number, from 1.
        line: usize,
        /// Why.
        error: AclError,
    },
}

/// The changes that define the users of an ACL file's `text`, one per user line, in order.
pub fn parse_acl_file(text: &[u8]) -> Result<Vec<AclChange>, AclFileError> {
    if text.len() > ACL_FILE_BYTES_MAX {
        return Err(AclFileError::TooLarge);
    }
    let mut changes = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let line_number = index + 1;
        let mut words = line.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty());
        let Some(first) = words.next() else { continue };
        if first.starts_with(b"#") {
            continue;
        }
        let name =
            words.next().filter(|_| first == b"user").ok_or(AclFileError::NotAUser { line: line_number })?;
        let rules: Vec<&[u8]> = std::iter::once(&b"reset"[..]).chain(words).collect();
        let change = AclChange::set_user(name, &rules)
            .map_err(|error| AclFileError::Rules { line: line_number, error })?;
        changes.push(change);
    }
    Ok(changes)
}

/// The change `requirepass` makes: the `default` user's only password (none: no password).
pub fn requirepass_change(password: &[u8]) -> AclChange {
    let rules = if password.is_empty() {
        vec![b"nopass".to_vec()]
    } else {
        vec![b"resetpass".to_vec(), format!("#{}", PasswordHash::of(password)).into_bytes()]
    };
    AclChange::SetUser { name: DEFAULT_USER.to_string(), rules }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::AclUsers;

    #[test]
    fn an_acl_file_defines_each_user_from_scratch() {
        let text =
            b"# operators\nuser default on nopass ~* &* +@all\n\nuser app on >pw ~app:* +@read +@write\n";
        let changes = parse_acl_file(text).expect("parses");
        assert_eq!(changes.len(), 2);
        let mut users = AclUsers::default();
        for change in &changes {
            users.apply(change).expect("applies");
        }
        assert!(users.authenticate("app", b"pw").is_some());
        assert!(parse_acl_file(b"usr x on").is_err_and(|e| e == AclFileError::NotAUser { line: 1 }));
        assert!(matches!(
            parse_acl_file(b"user x on\nuser y bogus"),
            Err(AclFileError::Rules { line: 2, .. })
        ));
        assert_eq!(parse_acl_file(&vec![b' '; ACL_FILE_BYTES_MAX + 1]), Err(AclFileError::TooLarge));
    }

    #[test]
    fn requirepass_sets_the_default_users_only_password() {
        let mut users = AclUsers::default();
        users.apply(&requirepass_change(b"pw")).expect("applies");
        assert!(users.authenticate(DEFAULT_USER, b"pw").is_some());
        assert!(users.authenticate(DEFAULT_USER, b"").is_none());
        users.apply(&requirepass_change(b"")).expect("applies");
        assert!(!users.is_configured(), "an empty requirepass opens the default user again");
    }
}
