//! Password hashes: PHC-format argon2id strings with a random salt, as stored in the users
//! file, and their verification. Owns nothing else; passwords are never logged or kept.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Errors hashing or parsing a stored hash.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The stored string is not a PHC hash this broker can verify.
    #[error("invalid password hash: {0}")]
    Invalid(String),
}

/// Hashes `password` with argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane, the OWASP
/// minimum) and a fresh 128-bit random salt. Returns the PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &[u8]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Invalid(e.to_string()))
}

/// Checks that `phc` is a hash we can verify (used when loading files and config).
pub fn validate(phc: &str) -> Result<(), HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError::Invalid(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashError::Invalid(format!(
            "algorithm {} (want argon2id)",
            parsed.algorithm
        )));
    }
    Ok(())
}

/// True when `password` matches the PHC hash `phc`. The parameters (memory, passes, salt)
/// come from the string, so hashes made with other settings still verify.
pub fn verify(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default().verify_password(password, &parsed).is_ok()
}

/// Compares two secrets in time independent of where they differ (for passwords given in
/// clear in the config file), so response time does not reveal a matching prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_salts_differ() {
        let a = hash(b"s3cret").unwrap();
        let b = hash(b"s3cret").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "random salt");
        assert!(verify(b"s3cret", &a));
        assert!(!verify(b"s3cret!", &a));
        assert!(validate(&a).is_ok());
        assert!(validate("plain").is_err());
        assert!(!verify(b"x", "garbage"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"guest", b"guest"));
        assert!(!constant_time_eq(b"guest", b"guesT"));
        assert!(!constant_time_eq(b"guest", b"guest1"));
    }
}
