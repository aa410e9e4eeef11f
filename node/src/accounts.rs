//! The people who use a node: user accounts with a role, sessions, and the
//! audit log of what each person did. Kept in their own RocksDB in
//! `DIR/accounts` (never replicated: a unit's staff are its own business;
//! what replicates is the person's name on the records they write).
//!
//! Passwords are stored as Argon2id PHC strings; a session token is given
//! to the browser once and stored only as its SHA-256. Every write is
//! synced before it is acknowledged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a session lasts after login.
pub const SESSION_SECS: u64 = 12 * 3600;
/// Failed logins of one name before it is locked for [`LOCK_SECS`].
pub const MAX_FAILURES: u32 = 5;
pub const LOCK_SECS: u64 = 15 * 60;
/// Password length bounds (characters).
pub const MIN_PASSWORD: usize = 10;
pub const MAX_PASSWORD: usize = 256;
/// Audit entries returned in one page at most.
pub const MAX_AUDIT_PAGE: usize = 500;

/// What a person may do on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the merged view and exports.
    Viewer,
    /// Also writes for the node's unit (needs, claims, responses, signatures).
    Operator,
    /// Also manages users, reads the audit log, takes backups and bundles.
    Administrator,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Administrator => "administrator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Role, AccountError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "administrator" => Ok(Role::Administrator),
            other => Err(AccountError::Invalid(format!(
                "role: `{other}` is not one of administrator, operator, viewer"
            ))),
        }
    }
}

/// A user account as stored (the hash never leaves this module's callers
/// through the API: see [`User::public`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub hash: String,
    pub created_at: u64,
    pub disabled: bool,
}

impl User {
    /// The account without its password hash.
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "display_name": self.display_name,
            "role": self.role,
            "created_at": self.created_at,
            "disabled": self.disabled,
        })
    }

    /// The name written on records this person makes.
    pub fn shown(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    user: String,
    created_at: u64,
    expires_at: u64,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: u64,
    /// The user's name, or `api.token` for a request with the node's token.
    pub person: String,
    pub role: Option<Role>,
    /// e.g. `POST /v1/items`, `login`, `login_failed`.
    pub action: String,
    /// HTTP status of the request (0 for events that are not requests).
    pub status: u16,
    /// What was written (a record's id) or why it failed.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("user `{0}` exists already")]
    Exists(String),
    #[error("wrong name or password")]
    BadLogin,
    #[error("too many failed logins for `{0}`: try again in {1} minutes")]
    Locked(String, u64),
    #[error("another login for this name is being checked: try again")]
    Busy,
    #[error("{0}")]
    LastAdministrator(&'static str),
    #[error("accounts store: {0}")]
    Store(String),
}

fn store(e: impl std::fmt::Display) -> AccountError {
    AccountError::Store(e.to_string())
}

/// A user name: 1 to 32 lowercase letters, digits, `.`, `-` or `_`.
fn check_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "name: `{name}` must be 1 to 32 lowercase letters, digits, `.`, `-` or `_`"
        )))
    }
}

fn check_display(display: &str) -> Result<(), AccountError> {
    let n = display.chars().count();
    if n > gongjian_model::MAX_PERSON || display.chars().any(char::is_control) {
        return Err(AccountError::Invalid(format!(
            "display_name: at most {} characters, no control characters",
            gongjian_model::MAX_PERSON
        )));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(AccountError::Invalid(format!(
            "password: {MIN_PASSWORD} to {MAX_PASSWORD} characters (got {n})"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(store)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(store)?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn token_key(token: &str) -> Vec<u8> {
    let mut k = b"s/".to_vec();
    k.extend_from_slice(hex::encode(Sha256::digest(token.as_bytes())).as_bytes());
    k
}

fn user_key(name: &str) -> Vec<u8> {
    [b"u/".as_slice(), name.as_bytes()].concat()
}

fn audit_key(seq: u64) -> Vec<u8> {
    [b"a/".as_slice(), &seq.to_be_bytes()].concat()
}

/// The accounts of one node.
pub struct Accounts {
    db: rocksdb::DB,
    next_audit: AtomicU64,
    /// Failed logins by name: (count, first failure at).
    failures: Mutex<HashMap<String, Attempts>>,
    /// A hash checked against when the name is unknown, so that a wrong
    /// name takes as long as a wrong password.
    dummy: String,
    /// Audit lines of requests from nobody known (failed logins, writes
    /// without a valid token or session) in the current minute: capped at
    /// [`ANONYMOUS_LINES`] so that nobody can fill the disk with them.
    anonymous: Mutex<(u64, u32)>,
}

/// Failed logins of one name since `since`, and whether a check of it is
/// running.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    since: u64,
    busy: bool,
}

/// Audit lines per minute for requests from nobody known.
pub const ANONYMOUS_LINES: u32 = 60;
/// Names whose failed logins are remembered at most.
const MAX_TRACKED: usize = 10_000;
/// Longest audit fields (characters).
const AUDIT_FIELD: usize = 300;

/// `s` cut to `max` characters, control characters (terminal escapes)
/// replaced.
fn clean(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

impl Accounts {
    /// Opens (creating if needed) the accounts store at `path`.
    pub fn open(path: &Path) -> Result<Accounts, AccountError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        let db = rocksdb::DB::open(&opts, path)
            .map_err(|e| AccountError::Store(format!("{}: {e}", path.display())))?;
        let mut it = db.iterator(rocksdb::IteratorMode::From(
            &audit_key(u64::MAX),
            rocksdb::Direction::Reverse,
        ));
        let next = match it.next() {
            Some(Ok((k, _))) if k.starts_with(b"a/") && k.len() == 10 => {
                u64::from_be_bytes(k[2..10].try_into().expect("8 bytes")) + 1
            }
            Some(Err(e)) => return Err(store(e)),
            _ => 1,
        };
        drop(it);
        Ok(Accounts {
            db,
            next_audit: AtomicU64::new(next),
            failures: Mutex::new(HashMap::new()),
            dummy: hash_password("not a password of anyone")?,
            anonymous: Mutex::new((0, 0)),
        })
    }

    fn put(&self, key: &[u8], value: &impl Serialize) -> Result<(), AccountError> {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        let v = serde_json::to_vec(value).map_err(store)?;
        self.db.put_opt(key, v, &w).map_err(store)
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, AccountError> {
        match self.db.get(key).map_err(store)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(store),
        }
    }

    fn delete(&self, key: &[u8]) -> Result<(), AccountError> {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(true);
        self.db.delete_opt(key, &w).map_err(store)
    }

    fn scan<T: for<'de> Deserialize<'de>>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>, AccountError> {
        let mut out = Vec::new();
        for kv in self.db.prefix_iterator(prefix) {
            let (k, v) = kv.map_err(store)?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), serde_json::from_slice(&v).map_err(store)?));
        }
        Ok(out)
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<User>, AccountError> {
        Ok(self
            .scan::<User>(b"u/")?
            .into_iter()
            .map(|(_, u)| u)
            .collect())
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, AccountError> {
        self.get(&user_key(name))
    }

    pub fn add_user(
        &self,
        name: &str,
        display_name: &str,
        role: Role,
        password: &str,
        now: u64,
    ) -> Result<User, AccountError> {
        check_name(name)?;
        check_display(display_name)?;
        check_password(password)?;
        if self.user(name)?.is_some() {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let user = User {
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            role,
            hash: hash_password(password)?,
            created_at: now,
            disabled: false,
        };
        self.put(&user_key(name), &user)?;
        Ok(user)
    }

    /// Whether another enabled administrator than `name` exists.
    fn other_administrator(&self, name: &str) -> Result<bool, AccountError> {
        Ok(self
            .users()?
            .iter()
            .any(|u| u.name != name && u.role == Role::Administrator && !u.disabled))
    }

    /// Changes an account; `None` leaves a field as it is. Disabling or
    /// demoting an account ends its sessions.
    pub fn update_user(
        &self,
        name: &str,
        display_name: Option<&str>,
        role: Option<Role>,
        password: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<User, AccountError> {
        let mut user = self
            .user(name)?
            .ok_or_else(|| AccountError::NoUser(name.to_owned()))?;
        if let Some(d) = display_name {
            check_display(d)?;
            user.display_name = d.to_owned();
        }
        if let Some(p) = password {
            check_password(p)?;
            user.hash = hash_password(p)?;
        }
        let losing_admin = user.role == Role::Administrator
            && (role.is_some_and(|r| r != Role::Administrator) || disabled == Some(true));
        if losing_admin && !user.disabled && !self.other_administrator(name)? {
            return Err(AccountError::LastAdministrator(
                "the node's last administrator keeps that role (add another first)",
            ));
        }
        let end_sessions = role.is_some_and(|r| r < user.role) || disabled == Some(true);
        if let Some(r) = role {
            user.role = r;
        }
        if let Some(d) = disabled {
            user.disabled = d;
        }
        self.put(&user_key(name), &user)?;
        if end_sessions || password.is_some() {
            self.end_sessions(name)?;
        }
        Ok(user)
    }

    pub fn remove_user(&self, name: &str) -> Result<(), AccountError> {
        let user = self
            .user(name)?
            .ok_or_else(|| AccountError::NoUser(name.to_owned()))?;
        if user.role == Role::Administrator && !self.other_administrator(name)? {
            return Err(AccountError::LastAdministrator(
                "the node's last administrator is not removed (add another first)",
            ));
        }
        self.delete(&user_key(name))?;
        self.end_sessions(name)
    }

    fn end_sessions(&self, name: &str) -> Result<(), AccountError> {
        for (k, s) in self.scan::<Session>(b"s/")? {
            if s.user == name {
                self.delete(&k)?;
            }
        }
        Ok(())
    }

    /// Checks a password (slow: Argon2id; call off the async threads):
    /// the user, if the name is enabled and not locked and the password is
    /// right. One check per name at a time (a parallel attempt is told to
    /// retry, so parallel guessing gains nothing and never locks out a right
    /// password); five wrong ones lock the name for [`LOCK_SECS`]; a right
    /// one clears the count.
    pub fn verify(&self, name: &str, password: &str, now: u64) -> Result<User, AccountError> {
        if check_name(name).is_err() || password.len() > MAX_PASSWORD * 4 {
            return Err(AccountError::BadLogin);
        }
        {
            let mut f = self.failures.lock().map_err(|_| store("lock poisoned"))?;
            if f.len() >= MAX_TRACKED && !f.contains_key(name) {
                // Forget names that are not locked; a lock is never lost.
                f.retain(|_, a| {
                    a.busy || (a.failures >= MAX_FAILURES && now < a.since + LOCK_SECS)
                });
            }
            if f.len() < MAX_TRACKED || f.contains_key(name) {
                let a = f.entry(name.to_owned()).or_insert(Attempts {
                    failures: 0,
                    since: now,
                    busy: false,
                });
                if now >= a.since + LOCK_SECS {
                    a.failures = 0;
                    a.since = now;
                }
                if a.failures >= MAX_FAILURES {
                    let left = (a.since + LOCK_SECS - now).div_ceil(60);
                    return Err(AccountError::Locked(name.to_owned(), left));
                }
                if a.busy {
                    return Err(AccountError::Busy);
                }
                a.busy = true;
            }
        }
        let user = self.user(name);
        let ok = match &user {
            Ok(Some(u)) => verify_password(password, &u.hash) && !u.disabled,
            _ => {
                verify_password(password, &self.dummy);
                false
            }
        };
        let mut f = self.failures.lock().map_err(|_| store("lock poisoned"))?;
        match (ok, user?) {
            (true, Some(u)) => {
                f.remove(name);
                Ok(u)
            }
            _ => {
                if let Some(a) = f.get_mut(name) {
                    a.busy = false;
                    a.failures += 1;
                }
                Err(AccountError::BadLogin)
            }
        }
    }

    /// [`Accounts::verify`], then a new session: its token (given to the
    /// browser once, stored only as its SHA-256), the user, and when it ends.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        now: u64,
    ) -> Result<(String, User, u64), AccountError> {
        let user = self.verify(name, password, now)?;
        // Expired sessions go at each login.
        for (k, s) in self.scan::<Session>(b"s/")? {
            if s.expires_at <= now {
                self.delete(&k)?;
            }
        }
        let token = crate::api::random_id() + &crate::api::random_id();
        let expires_at = now + SESSION_SECS;
        self.put(
            &token_key(&token),
            &Session {
                user: user.name.clone(),
                created_at: now,
                expires_at,
            },
        )?;
        Ok((token, user, expires_at))
    }

    /// Whether an audit line for a request from nobody known may be
    /// written now (at most [`ANONYMOUS_LINES`] a minute).
    pub fn anonymous_line(&self, now: u64) -> bool {
        let Ok(mut a) = self.anonymous.lock() else {
            return false;
        };
        let minute = now / 60;
        if a.0 != minute {
            *a = (minute, 0);
        }
        a.1 += 1;
        a.1 <= ANONYMOUS_LINES
    }

    /// The user a session token belongs to, while it lasts and the account
    /// is enabled.
    pub fn session(&self, token: &str, now: u64) -> Result<Option<(User, u64)>, AccountError> {
        let Some(s) = self.get::<Session>(&token_key(token))? else {
            return Ok(None);
        };
        if s.expires_at <= now {
            self.delete(&token_key(token))?;
            return Ok(None);
        }
        Ok(self
            .user(&s.user)?
            .filter(|u| !u.disabled)
            .map(|u| (u, s.expires_at)))
    }

    pub fn logout(&self, token: &str) -> Result<(), AccountError> {
        self.delete(&token_key(token))
    }

    /// Appends an audit entry (synced).
    pub fn audit(
        &self,
        at: u64,
        person: &str,
        role: Option<Role>,
        action: &str,
        status: u16,
        detail: &str,
    ) -> Result<AuditEntry, AccountError> {
        let seq = self.next_audit.fetch_add(1, Ordering::SeqCst);
        let e = AuditEntry {
            seq,
            at,
            person: clean(person, gongjian_model::MAX_PERSON),
            role,
            action: clean(action, AUDIT_FIELD),
            status,
            detail: clean(detail, AUDIT_FIELD),
        };
        self.put(&audit_key(seq), &e)?;
        Ok(e)
    }

    /// Audit entries newest first, before `before` (a `seq`), at most
    /// `limit`.
    pub fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, AccountError> {
        let start = audit_key(before.unwrap_or(u64::MAX).saturating_sub(1));
        let mut out = Vec::new();
        for kv in self.db.iterator(rocksdb::IteratorMode::From(
            &start,
            rocksdb::Direction::Reverse,
        )) {
            let (k, v) = kv.map_err(store)?;
            if !k.starts_with(b"a/") || out.len() >= limit.min(MAX_AUDIT_PAGE) {
                break;
            }
            out.push(serde_json::from_slice(&v).map_err(store)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("accounts")).unwrap();
        (dir, a)
    }

    #[test]
    fn a_password_is_stored_hashed_and_checked() {
        let (_d, a) = open();
        let u = a
            .add_user("wangfang", "王芳", Role::Operator, "长江路12号-secret", 100)
            .unwrap();
        assert!(u.hash.starts_with("$argon2id$"), "{}", u.hash);
        assert!(!u.hash.contains("secret"));
        let (token, user, exp) = a.login("wangfang", "长江路12号-secret", 200).unwrap();
        assert_eq!(user.display_name, "王芳");
        assert_eq!(exp, 200 + SESSION_SECS);
        assert_eq!(a.session(&token, 300).unwrap().unwrap().0.name, "wangfang");
        assert!(a.session(&token, 200 + SESSION_SECS).unwrap().is_none());
        assert!(matches!(
            a.login("wangfang", "wrong password", 300),
            Err(AccountError::BadLogin)
        ));
        assert!(matches!(
            a.login("nobody", "wrong password", 300),
            Err(AccountError::BadLogin)
        ));
    }

    #[test]
    fn failed_logins_lock_the_name_for_a_while() {
        let (_d, a) = open();
        a.add_user("li", "", Role::Viewer, "correct horse", 0)
            .unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                a.login("li", "wrong wrong", 10),
                Err(AccountError::BadLogin)
            ));
        }
        assert!(matches!(
            a.login("li", "correct horse", 20),
            Err(AccountError::Locked(..))
        ));
        assert!(a.login("li", "correct horse", 10 + LOCK_SECS).is_ok());
    }

    #[test]
    fn parallel_right_logins_never_lock_and_parallel_guesses_wait() {
        let (_d, a) = open();
        a.add_user("li", "", Role::Viewer, "correct horse", 0)
            .unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            assert!(a.login("li", "wrong wrong", 10).is_err());
        }
        let results: Vec<_> = std::thread::scope(|s| {
            let h: Vec<_> = (0..4)
                .map(|_| s.spawn(|| a.login("li", "correct horse", 11)))
                .collect();
            h.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().any(Result::is_ok), "{results:?}");
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(AccountError::Busy))),
            "{results:?}"
        );
        // Four more wrong ones in parallel count as at most what ran.
        for _ in 0..MAX_FAILURES - 1 {
            assert!(a.login("li", "wrong wrong", 12).is_err());
        }
        assert!(
            a.login("li", "correct horse", 13).is_ok(),
            "4 failures: not locked"
        );
    }

    #[test]
    fn the_last_administrator_stays_and_disabling_ends_sessions() {
        let (_d, a) = open();
        a.add_user("admin", "", Role::Administrator, "0123456789", 0)
            .unwrap();
        assert!(matches!(
            a.update_user("admin", None, Some(Role::Viewer), None, None),
            Err(AccountError::LastAdministrator(_))
        ));
        assert!(matches!(
            a.remove_user("admin"),
            Err(AccountError::LastAdministrator(_))
        ));
        a.add_user("op", "", Role::Operator, "0123456789", 0)
            .unwrap();
        let (t, ..) = a.login("op", "0123456789", 1).unwrap();
        a.update_user("op", None, None, None, Some(true)).unwrap();
        assert!(a.session(&t, 2).unwrap().is_none());
        assert!(matches!(
            a.add_user("Bad Name", "", Role::Viewer, "0123456789", 0),
            Err(AccountError::Invalid(_))
        ));
        assert!(matches!(
            a.add_user("short", "", Role::Viewer, "123", 0),
            Err(AccountError::Invalid(_))
        ));
    }

    #[test]
    fn the_audit_log_pages_newest_first_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        {
            let a = Accounts::open(&path).unwrap();
            for i in 0..5 {
                a.audit(i, "王芳", Some(Role::Operator), "POST /v1/items", 201, "")
                    .unwrap();
            }
        }
        let a = Accounts::open(&path).unwrap();
        let e = a.audit(9, "admin", None, "login", 0, "").unwrap();
        assert_eq!(e.seq, 6);
        let page = a.audit_page(None, 3).unwrap();
        assert_eq!(
            page.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![6, 5, 4]
        );
        let next = a.audit_page(Some(4), 10).unwrap();
        assert_eq!(
            next.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert_eq!(next[0].person, "王芳");
    }
}
