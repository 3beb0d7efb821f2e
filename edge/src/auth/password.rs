//! Passwords: argon2id, hashed and checked on the blocking pool (each takes
//! tens of milliseconds of CPU by design, which would stall every request
//! on an async worker), compared in constant time by the argon2 crate.
//!
//! Signing in as a user who does not exist checks the password against a
//! fixed dummy hash, so the answer takes as long as for a real account and
//! timing does not tell whether a name exists.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted for an account.
pub(crate) const MIN_LENGTH: usize = 8;
/// The longest: argon2 takes any length, but a megabyte "password" is an
/// attack on the CPU, not a password.
pub(crate) const MAX_LENGTH: usize = 1024;

/// Why a new password is refused, in words for the person choosing it.
pub(crate) fn check_new(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        Err(format!(
            "the password must have at least {MIN_LENGTH} characters; a few words make a good one"
        ))
    } else if password.len() > MAX_LENGTH {
        Err(format!("the password must be at most {MAX_LENGTH} bytes"))
    } else {
        Ok(())
    }
}

/// Hashes a new password (argon2id with the crate's default cost: 19 MiB,
/// 2 passes, as OWASP recommends).
pub(crate) async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| e.to_string())?
}

fn hash_now(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `stored` (a PHC string); with no stored hash
/// (no such account), checks a dummy and answers `false`, in the same time.
pub(crate) async fn verify(password: String, stored: Option<String>) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match &stored {
            Some(hash) => (hash.as_str(), true),
            None => (dummy(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && real
    })
    .await
    .unwrap_or(false)
}

/// A hash of nothing anyone knows, made once, with the same cost as a
/// real one.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_now("no account has this password").unwrap_or_else(|_| {
            // Without randomness a fixed salt will do: the hash protects
            // nothing, it only costs the same time.
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$4nS7ZuGbAaPDbXAGmTXNzHNz2E8tTnG/c0l3o5yE1ks".to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_matches_its_own_hash_only() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify("correct horsf".into(), Some(hash.clone())).await);
        assert!(!verify("correct horse".into(), None).await, "no account");
        assert!(!verify("x".into(), Some("not a hash".into())).await);
    }

    #[test]
    fn new_passwords_are_checked_with_a_reason() {
        assert!(check_new("short").unwrap_err().contains("at least 8"));
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&"x".repeat(2000)).is_err());
    }
}
