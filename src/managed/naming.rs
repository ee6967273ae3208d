//! Deterministic names, generated passwords and connection URIs.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

pub use crate::api::instance::{MAX_IDENTIFIER_LEN, derive_identifier, is_valid_identifier};
/// Length of generated master passwords (RDS PostgreSQL accepts 8 to 128).
pub const PASSWORD_LEN: usize = 40;

/// Whether `s` is a valid DB snapshot identifier (same rules, up to 255 characters).
pub fn is_valid_snapshot_identifier(s: &str) -> bool {
    crate::api::instance::is_valid_rds_name(s, 255)
}

/// A final snapshot identifier for `identifier`, unique per deletion (UTC timestamp).
pub fn final_snapshot_identifier(identifier: &str, now: jiff::Timestamp) -> String {
    let ts = now.strftime("%Y%m%d%H%M%S").to_string();
    format!("{identifier}-final-{ts}")
}

/// The snapshot name a spec asked for, with the deletion time (UTC) appended so that it is
/// unique per deletion; cut to RDS's 255 characters, never ending in `-`.
pub fn stamped_snapshot_identifier(name: &str, now: jiff::Timestamp) -> String {
    let ts = now.strftime("%Y%m%d%H%M%S").to_string();
    let keep = 255 - ts.len() - 1;
    let base: String = name.chars().take(keep).collect();
    format!("{}-{ts}", base.trim_end_matches('-'))
}

/// Characters RDS accepts in a master password: printable ASCII except `/`, `"`, `@` and space.
pub fn password_alphabet() -> Vec<u8> {
    (0x21u8..=0x7e)
        .filter(|c| !matches!(c, b'/' | b'"' | b'@'))
        .collect()
}

/// A new master password from the thread-local CSPRNG (ChaCha, seeded from the OS).
pub fn generate_password() -> String {
    use rand::seq::IndexedRandom;
    let alphabet = password_alphabet();
    let mut rng = rand::rng();
    (0..PASSWORD_LEN)
        .filter_map(|_| alphabet.choose(&mut rng).map(|&b| char::from(b)))
        .collect()
}

/// Whether a password can be given to RDS as is.
pub fn is_acceptable_password(p: &str) -> bool {
    let alphabet = password_alphabet();
    (8..=128).contains(&p.len()) && p.bytes().all(|b| alphabet.contains(&b))
}

/// Characters escaped in URI userinfo and path: everything but unreserved characters.
const URI_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `postgresql://user:password@host:port/dbname?sslmode=require`, URL-encoded.
pub fn connection_uri(
    username: &str,
    password: Option<&str>,
    host: &str,
    port: i32,
    db_name: Option<&str>,
) -> String {
    let user = utf8_percent_encode(username, URI_ESCAPE);
    let auth = match password {
        Some(p) => format!("{user}:{}", utf8_percent_encode(p, URI_ESCAPE)),
        None => user.to_string(),
    };
    let db = db_name
        .map(|d| format!("/{}", utf8_percent_encode(d, URI_ESCAPE)))
        .unwrap_or_default();
    format!("postgresql://{auth}@{host}:{port}{db}?sslmode=require")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn derived_identifiers_are_valid_stable_and_distinct() {
        let a = derive_identifier("team-a", "orders-db");
        assert!(a.starts_with("team-a-orders-db-"), "{a}");
        assert!(is_valid_identifier(&a), "{a}");
        assert_eq!(a, derive_identifier("team-a", "orders-db"));
        assert_ne!(derive_identifier("a-b", "c"), derive_identifier("a", "b-c"));
        let long = derive_identifier(&"n".repeat(63), &"x".repeat(253));
        assert!(is_valid_identifier(&long), "{long}");
        let digits = derive_identifier("1ns", "2.db");
        assert!(is_valid_identifier(&digits), "{digits}");
    }

    proptest! {
        #[test]
        fn any_name_gives_a_valid_identifier(ns in "[a-z0-9][a-z0-9-]{0,62}", name in "[a-z0-9][a-z0-9.-]{0,252}") {
            let id = derive_identifier(&ns, &name);
            prop_assert!(is_valid_identifier(&id), "{}", id);
        }
    }

    #[test]
    fn passwords_are_long_and_from_the_allowed_set() {
        for _ in 0..200 {
            let p = generate_password();
            assert!(p.len() >= 32);
            assert!(is_acceptable_password(&p));
            assert!(!p.contains(['/', '"', '@', ' ']));
        }
        assert_ne!(generate_password(), generate_password());
    }

    #[test]
    fn uri_is_encoded() {
        let u = connection_uri(
            "postgres",
            Some("a:b?c#d%e"),
            "h.example",
            5432,
            Some("app"),
        );
        assert_eq!(
            u,
            "postgresql://postgres:a%3Ab%3Fc%23d%25e@h.example:5432/app?sslmode=require"
        );
        let u = connection_uri("postgres", None, "h", 5432, None);
        assert_eq!(u, "postgresql://postgres@h:5432?sslmode=require");
    }

    #[test]
    fn snapshot_identifier_is_valid() {
        let id =
            final_snapshot_identifier(&derive_identifier("ns", "db"), jiff::Timestamp::UNIX_EPOCH);
        assert!(is_valid_snapshot_identifier(&id), "{id}");
        assert!(id.ends_with("-final-19700101000000"), "{id}");
    }
}
