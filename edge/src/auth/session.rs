//! The session cookie: signed, stateless, checked by any edge that shares
//! the key, without a store call.
//!
//! The value is `{user}.{epoch}.{expires}.{mac}`: the user, the account's
//! session epoch when it was issued, when it expires (Unix seconds), and
//! HMAC-SHA256 of the first three under the shared key, in hex. User ids
//! never contain more dots than the value's own, because the value is read
//! from the right. A value that does not parse, is signed under another
//! key, or has expired is no session at all; the epoch is compared with
//! the account's by the caller, since only it knows the account.

use chrono::{DateTime, TimeDelta, Utc};
use common::api::UserId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie's name (the contract).
pub(crate) const COOKIE: &str = "rss_session";

/// How long a session lasts without use; every use renews it (rolling).
pub(crate) const LIFETIME: TimeDelta = TimeDelta::days(30);

/// A session is re-issued (its expiry moved on) at most this often, so a
/// busy reader does not get a new cookie with every request.
const RENEW_AFTER: TimeDelta = TimeDelta::days(1);

/// The key sessions are signed with: shared by every edge (from
/// `--session-key-file`), or random for one process.
#[derive(Clone)]
pub(crate) struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// The shortest key accepted: HMAC-SHA256's own block of strength.
pub(crate) const MIN_KEY_BYTES: usize = 32;

impl SessionKey {
    /// A key from the contents of a key file (surrounding white space is
    /// not part of it); `None` when it is too short to be safe.
    pub(crate) fn from_file_contents(contents: &[u8]) -> Option<Self> {
        let key = contents.trim_ascii();
        (key.len() >= MIN_KEY_BYTES).then(|| Self(key.to_vec()))
    }

    /// A random key, for a process without a key file.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Self(key))
    }

    /// A signature of `payload` for one `purpose` (e.g. `media`): a value
    /// signed for one purpose is never valid for another, sessions included.
    pub(crate) fn sign_for(&self, purpose: &str, payload: &str) -> String {
        hex(&self
            .mac(&format!("{purpose}\n{payload}"))
            .finalize()
            .into_bytes())
    }

    /// Whether `signature` is [`Self::sign_for`]'s, in constant time.
    pub(crate) fn verify_for(&self, purpose: &str, payload: &str, signature: &str) -> bool {
        unhex(signature).is_some_and(|mac| {
            self.mac(&format!("{purpose}\n{payload}"))
                .verify_slice(&mac)
                .is_ok()
        })
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(payload.as_bytes());
        mac
    }
}

/// Who a valid cookie says is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub user: UserId,
    /// The account's epoch when the session was issued.
    pub epoch: u64,
    pub expires: DateTime<Utc>,
}

impl Session {
    /// A new session for `user`, from `now`.
    pub(crate) fn new(user: UserId, epoch: u64, now: DateTime<Utc>) -> Self {
        Self {
            user,
            epoch,
            expires: now + LIFETIME,
        }
    }

    /// The cookie value, signed with `key`.
    pub(crate) fn sign(&self, key: &SessionKey) -> String {
        let payload = format!("{}.{}.{}", self.user, self.epoch, self.expires.timestamp());
        let mac = key.mac(&payload).finalize().into_bytes();
        format!("{payload}.{}", hex(&mac))
    }

    /// The session a cookie value holds, if it was signed with `key` and
    /// has not expired at `now`.
    pub(crate) fn verify(value: &str, key: &SessionKey, now: DateTime<Utc>) -> Option<Self> {
        let (payload, mac) = value.rsplit_once('.')?;
        let mac = unhex(mac)?;
        // Constant time: `verify_slice` does not stop at the first
        // difference.
        key.mac(payload).verify_slice(&mac).ok()?;
        let mut parts = payload.rsplitn(3, '.');
        let expires = parts.next()?.parse::<i64>().ok()?;
        let epoch = parts.next()?.parse::<u64>().ok()?;
        let user = UserId::parse(parts.next()?).ok()?;
        let expires = DateTime::from_timestamp(expires, 0)?;
        (expires > now).then_some(Self {
            user,
            epoch,
            expires,
        })
    }

    /// Whether to send a renewed cookie (see [`RENEW_AFTER`]).
    pub(crate) fn due_for_renewal(&self, now: DateTime<Utc>) -> bool {
        self.expires - now < LIFETIME - RENEW_AFTER
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey(vec![byte; 32])
    }

    fn alice(now: DateTime<Utc>) -> Session {
        Session::new(UserId::parse("alice.smith@example.com").unwrap(), 3, now)
    }

    #[test]
    fn a_signed_session_verifies_until_it_expires() {
        let now = Utc::now();
        let value = alice(now).sign(&key(1));
        let back = Session::verify(&value, &key(1), now).unwrap();
        assert_eq!(back.user.as_str(), "alice.smith@example.com");
        assert_eq!(back.epoch, 3);
        assert!(Session::verify(&value, &key(1), now + LIFETIME + TimeDelta::seconds(1)).is_none());
    }

    #[test]
    fn a_forged_or_tampered_cookie_is_no_session() {
        let now = Utc::now();
        let value = alice(now).sign(&key(1));
        assert!(
            Session::verify(&value, &key(2), now).is_none(),
            "another key"
        );
        let other = value.replacen("alice.smith", "admin", 1);
        assert!(
            Session::verify(&other, &key(1), now).is_none(),
            "another user"
        );
        let epoch = value.replacen(".3.", ".4.", 1);
        assert!(
            Session::verify(&epoch, &key(1), now).is_none(),
            "another epoch"
        );
        for junk in [
            "",
            ".",
            "a.b.c.d",
            "alice.0.99999999999.zz",
            &value[..value.len() - 1],
        ] {
            assert!(Session::verify(junk, &key(1), now).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn a_session_is_renewed_once_a_day_not_on_every_request() {
        let now = Utc::now();
        let session = alice(now);
        assert!(!session.due_for_renewal(now + TimeDelta::hours(23)));
        assert!(session.due_for_renewal(now + TimeDelta::hours(25)));
    }

    #[test]
    fn short_key_files_are_refused() {
        assert!(SessionKey::from_file_contents(b"short\n").is_none());
        assert!(SessionKey::from_file_contents(&[b'k'; 32]).is_some());
        assert!(SessionKey::from_file_contents(b"  \n").is_none());
    }
}
