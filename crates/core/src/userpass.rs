//! The `userpass` auth method: users with a password and the settings of the token their
//! login gets, stored behind the barrier below the mount's storage prefix.
//!
//! Passwords are hashed with Argon2id at OWASP's minimum (Password Storage Cheat Sheet):
//! 19 MiB of memory, 2 passes, 1 lane, a 16-byte random salt, a 32-byte hash. Each hash keeps
//! its parameters, so raising them later leaves older hashes verifiable. Hashing takes tens
//! of milliseconds of one core, so it runs on the bounded crypto pool, never on an async
//! worker.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::engine::{Args, Call, Engine, Route};
use crate::mounts::MountEntry;
use crate::params::Params;
use crate::record;
use crate::token::LoginToken;
use crate::token::store::{cidr_contains, validate_cidrs};
use crate::totp::TotpSecret;
use crate::{Core, CoreError, CoreResult, Operation, Response};

/// The `userpass` engine.
pub(crate) struct Userpass;

/// The routes of a `userpass` mount.
#[derive(Clone, Copy)]
pub(crate) enum UserpassRoute {
    Users,
    User,
    Password,
    Policies,
    Totp,
    Login,
}

impl Engine for Userpass {
    type Route = UserpassRoute;

    const ROUTES: &'static [Route<UserpassRoute>] = {
        use Operation::{Delete, List, Read, Write};
        use UserpassRoute as U;
        &[
            Route::new("users", &[List], U::Users),
            Route::new("users/:username", &[Read, Write, Delete], U::User).checks_existence(),
            Route::new("users/:username/password", &[Write], U::Password),
            Route::new("users/:username/policies", &[Write], U::Policies),
            Route::new("users/:username/totp", &[Write, Delete], U::Totp),
            Route::new("login/:username", &[Write], U::Login).login(),
        ]
    };

    async fn exists(
        core: &Core,
        mount: &MountEntry,
        _route: UserpassRoute,
        args: Args<'_>,
    ) -> CoreResult<bool> {
        Ok(read_user(core, mount, &username(args.get(0)))
            .await?
            .is_some())
    }

    async fn handle(core: &Core, call: Call<'_, UserpassRoute>) -> CoreResult<Response> {
        use UserpassRoute as U;
        let p = Params(call.data);
        let (mount, name) = (call.mount, username(call.args.get(0)));
        match (call.route, call.operation) {
            (U::Users, _) => {
                let mut keys = core.barrier.list(&users_prefix(mount)).await?;
                if keys.is_empty() {
                    return Err(CoreError::NotFound(String::new()));
                }
                keys.sort();
                Ok(Response::data(json!({ "keys": keys })))
            }
            (U::User, Operation::Read) => {
                let user = read_user(core, mount, &name).await?;
                let user = user.ok_or_else(|| CoreError::NotFound(String::new()))?;
                Ok(Response::data(user.to_json()))
            }
            (U::User, Operation::Delete) => {
                core.barrier.delete(&user_key(mount, &name)).await?;
                Ok(Response::empty())
            }
            (U::User, _) => {
                let hashed = match p.str("password")?.filter(|pw| !pw.is_empty()) {
                    Some(pw) => Some(core.hash_password(Zeroizing::new(pw)).await?),
                    None => None,
                };
                change_user(core, mount, &name, |stored| {
                    let user = match (stored, hashed.clone()) {
                        (Some(user), None) => user,
                        (Some(user), Some(password)) => User { password, ..user },
                        (None, Some(password)) => User::new(password),
                        (None, None) => return Err(CoreError::bad("must provide password")),
                    };
                    user.updated(&p)
                })
                .await?;
                Ok(Response::empty())
            }
            (U::Password, _) => {
                let password = core
                    .hash_password(password(&p, "missing password")?)
                    .await?;
                change_user(core, mount, &name, |stored| {
                    let user = stored.ok_or_else(|| CoreError::bad("username does not exist"))?;
                    Ok(User {
                        password: password.clone(),
                        ..user
                    })
                })
                .await?;
                Ok(Response::empty())
            }
            (U::Policies, _) => {
                change_user(core, mount, &name, |stored| {
                    let user = stored.ok_or_else(|| CoreError::bad("username does not exist"))?;
                    user.with_policies(&p)
                })
                .await?;
                Ok(Response::empty())
            }
            (U::Totp, Operation::Delete) => {
                change_user(core, mount, &name, |stored| {
                    let user = stored.ok_or_else(|| CoreError::bad("username does not exist"))?;
                    Ok(User { totp: None, ..user })
                })
                .await?;
                Ok(Response::empty())
            }
            (U::Totp, _) => {
                let (secret, answer) = TotpSecret::enrol(&name)?;
                change_user(core, mount, &name, |stored| {
                    let user = stored.ok_or_else(|| CoreError::bad("username does not exist"))?;
                    if user.totp.is_some() {
                        return Err(CoreError::bad(
                            "user already has a TOTP secret: delete it before enrolling again",
                        ));
                    }
                    Ok(User {
                        totp: Some(secret.clone()),
                        ..user
                    })
                })
                .await?;
                Ok(Response::data(answer))
            }
            (U::Login, _) => {
                let login = UserpassLogin {
                    name,
                    remote: call.remote,
                    totp: p.str("totp")?.or_else(|| call.mfa.map(mfa_passcode)),
                };
                core.userpass_login(mount, login, &p).await
            }
        }
    }
}

/// The passcode of Vault's `X-Vault-MFA` header, `[method:]passcode` (a method name is
/// irrelevant here: TOTP is a user's only second factor).
fn mfa_passcode(header: &str) -> String {
    header.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Usernames are case-insensitive, as Vault's.
fn username(given: &str) -> String {
    given.to_lowercase()
}

fn password(p: &Params<'_>, missing: &str) -> CoreResult<Zeroizing<String>> {
    match p.str("password")? {
        Some(password) if !password.is_empty() => Ok(Zeroizing::new(password)),
        _ => Err(CoreError::bad(missing)),
    }
}

fn users_prefix(mount: &MountEntry) -> String {
    format!("{}user/", mount.storage_prefix())
}

fn user_key(mount: &MountEntry, name: &str) -> String {
    format!("{}{name}", users_prefix(mount))
}

async fn read_user(core: &Core, mount: &MountEntry, name: &str) -> CoreResult<Option<User>> {
    record::read(core, &user_key(mount, name), "userpass user").await
}

/// Stores user `name` as `change` makes it from the stored one, by compare-and-set.
async fn change_user(
    core: &Core,
    mount: &MountEntry,
    name: &str,
    change: impl Fn(Option<User>) -> CoreResult<User>,
) -> CoreResult<()> {
    record::change(core, &user_key(mount, name), "userpass user", change).await
}

/// A stored user. No `Debug`: it holds the password's hash.
#[derive(Serialize, Deserialize)]
struct User {
    password: PasswordHash,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_bound_cidrs: Vec<String>,
    /// The enrolled TOTP second factor, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpSecret>,
}

impl User {
    fn new(password: PasswordHash) -> Self {
        Self {
            password,
            token_policies: Vec::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_bound_cidrs: Vec::new(),
            totp: None,
        }
    }

    /// This user with the token settings `p` gives.
    fn updated(self, p: &Params<'_>) -> CoreResult<Self> {
        let mut user = self.with_policies(p)?;
        if let Some(ttl) = p.duration("token_ttl")? {
            user.token_ttl = ttl;
        }
        if let Some(max) = p.duration("token_max_ttl")? {
            user.token_max_ttl = max;
        }
        if user.token_max_ttl > 0 && user.token_ttl > user.token_max_ttl {
            return Err(CoreError::bad(
                "\"token_ttl\" value must be less than \"token_max_ttl\" value",
            ));
        }
        if let Some(cidrs) = p.str_list("token_bound_cidrs")? {
            validate_cidrs(&cidrs)?;
            user.token_bound_cidrs = cidrs;
        }
        Ok(user)
    }

    /// This user with the policies `p` gives, if it gives any (`policies` is Vault's older
    /// name of `token_policies`).
    fn with_policies(mut self, p: &Params<'_>) -> CoreResult<Self> {
        if let Some(policies) = p.token_policies()? {
            self.token_policies = policies;
        }
        Ok(self)
    }

    /// Vault's answer to a read of the user: never the password nor its hash.
    fn to_json(&self) -> serde_json::Value {
        json!({
            "policies": self.token_policies,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": 0,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": self.token_policies,
            "token_strictly_bind_ip": false,
            "token_ttl": self.token_ttl,
            "token_type": "default",
        })
    }
}

/// Argon2id's memory in KiB, passes and lanes: OWASP's minimum (see the module's comment).
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// An Argon2id hash of a password, with its salt and parameters.
#[derive(Serialize, Deserialize, Clone)]
struct PasswordHash {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    hash: String,
}

impl PasswordHash {
    /// Hashes `password` with a fresh salt.
    fn new(password: &[u8]) -> CoreResult<Self> {
        let salt = ward_crypto::random_array::<SALT_LEN>()?;
        let hash = argon2id(password, &salt, M_COST, T_COST, P_COST)?;
        Ok(Self {
            m_cost: M_COST,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: B64.encode(salt),
            hash: B64.encode(*hash),
        })
    }

    /// A hash no password matches, with the current parameters: verified for an unknown
    /// user, so that it takes as long as a wrong password does.
    fn dummy() -> Self {
        Self {
            m_cost: M_COST,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: B64.encode([0u8; SALT_LEN]),
            hash: String::new(),
        }
    }

    /// Whether `password` is the one hashed (in constant time once hashed).
    fn verify(&self, password: &[u8]) -> CoreResult<bool> {
        let salt = B64
            .decode(&self.salt)
            .map_err(|_| CoreError::corrupt("userpass password hash"))?;
        let computed = argon2id(password, &salt, self.m_cost, self.t_cost, self.p_cost)?;
        let Ok(stored) = B64.decode(&self.hash) else {
            return Err(CoreError::corrupt("userpass password hash"));
        };
        Ok(stored.len() == HASH_LEN && bool::from(computed.ct_eq(&stored[..])))
    }
}

fn argon2id(
    password: &[u8],
    salt: &[u8],
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
) -> CoreResult<Zeroizing<[u8; HASH_LEN]>> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let corrupt = |_| CoreError::corrupt("userpass password hash");
    let params = Params::new(m_cost, t_cost, p_cost, Some(HASH_LEN)).map_err(corrupt)?;
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out[..])
        .map_err(corrupt)?;
    Ok(out)
}

impl Core {
    /// Hashes `password` on the crypto pool.
    async fn hash_password(&self, password: Zeroizing<String>) -> CoreResult<PasswordHash> {
        self.transit_offload(move || PasswordHash::new(password.as_bytes()))
            .await
    }

    /// `auth/<mount>/login/:username`: a token for a user whose password matches, asking from
    /// inside the user's `token_bound_cidrs` if it has any (403 otherwise, as OpenBao), with
    /// an unused TOTP passcode if the user enrolled one. An unknown user costs the same hash
    /// as a wrong password and gets the same answer.
    async fn userpass_login(
        &self,
        mount: &MountEntry,
        login: UserpassLogin,
        p: &Params<'_>,
    ) -> CoreResult<Response> {
        let UserpassLogin { name, remote, totp } = login;
        let password = password(p, "missing password")?;
        let user = read_user(self, mount, &name).await?;
        let stored = user
            .as_ref()
            .map_or_else(PasswordHash::dummy, |u| u.password.clone());
        let matches = self
            .transit_offload(move || stored.verify(password.as_bytes()))
            .await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(CoreError::bad("invalid username or password"));
        };
        let admitted = |ip| user.token_bound_cidrs.iter().any(|c| cidr_contains(c, ip));
        if !user.token_bound_cidrs.is_empty() && !remote.is_some_and(admitted) {
            return Err(CoreError::PermissionDenied);
        }
        if user.totp.is_some() {
            let passcode = totp.ok_or_else(|| CoreError::bad("TOTP passcode required"))?;
            self.use_totp_passcode(mount, &name, &passcode).await?;
        }
        let mut meta = serde_json::Map::new();
        meta.insert("username".into(), json!(name));
        let login = LoginToken {
            policies: user.token_policies,
            meta,
            name,
            ttl: user.token_ttl,
            max_ttl: user.token_max_ttl,
            bound_cidrs: user.token_bound_cidrs,
            num_uses: 0,
            explicit_max_ttl: 0,
        };
        self.issue_login_token(mount, login).await
    }

    /// Records the step of `passcode` as used by user `name`, by compare-and-set, so that a
    /// code works once even when two logins present it at the same moment.
    async fn use_totp_passcode(
        &self,
        mount: &MountEntry,
        name: &str,
        passcode: &str,
    ) -> CoreResult<()> {
        let now = u64::try_from(crate::core::now()).unwrap_or_default();
        change_user(self, mount, name, |stored| {
            let refused = || CoreError::bad("invalid or already used TOTP passcode");
            let user = stored.ok_or_else(refused)?;
            let secret = user.totp.clone().ok_or_else(refused)?;
            let step = secret.accept(passcode, now)?.ok_or_else(refused)?;
            Ok(User {
                totp: Some(secret.used(step)),
                ..user
            })
        })
        .await
    }
}

/// Who logs in, from where, with which second factor.
struct UserpassLogin {
    name: String,
    remote: Option<std::net::IpAddr>,
    totp: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_no_other_does() {
        let hash = PasswordHash::new(b"correct horse").unwrap();
        assert_eq!((hash.m_cost, hash.t_cost, hash.p_cost), (19 * 1024, 2, 1));
        assert!(hash.verify(b"correct horse").unwrap());
        assert!(!hash.verify(b"correct horsf").unwrap());
        assert!(!hash.verify(b"").unwrap());
        assert!(!PasswordHash::dummy().verify(b"correct horse").unwrap());
        // A fresh salt each time: equal passwords do not give equal hashes.
        assert_ne!(PasswordHash::new(b"correct horse").unwrap().hash, hash.hash);
    }
}
