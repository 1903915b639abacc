//! Who is calling: the authenticated [`Principal`] of a request and its
//! [`Role`].
//!
//! The authentication middleware ([`layer`], the outermost layer around
//! REST and gRPC) puts a `Principal` into every request's extensions (REST,
//! SSE and gRPC alike); limits and authorization read it from there.
//!
//! - **Credentials.** A [`CredentialsFile`]: one principal per line,
//!   `name:role:hash`, the hash an argon2id PHC string ([`hash_secret`]).
//!   Clients send `name:secret` as HTTP Basic credentials or as a bearer
//!   token (`Authorization: Bearer name:secret`), so a request costs one
//!   lookup by name and at most one argon2 verification; successful
//!   verifications are remembered (keyed by a SHA-256 of the credential,
//!   bounded), so repeated requests cost a hash.
//! - **Authorization.** Reads (`GET`/`HEAD`, gRPC reads) need
//!   [`Role::ReadOnly`]; every other request [`Role::Deployer`];
//!   `DELETE /v2/leader` [`Role::Admin`]. Commands are checked once more
//!   where every write goes through ([`crate::ApiState::run`], via
//!   [`current`]), which is also where apps and jobs with privileged
//!   containers or host volumes need the privileged role (admin by
//!   default), so REST and gRPC cannot diverge.
//! - **Open.** [`Auth::open`] makes everyone an anonymous admin (`drover
//!   serve --insecure-open`).
//!
//! `/ping`, `/openapi.json` and the web UI's static files are served
//! without credentials.
//! Secrets and hashes never appear in `Debug`, logs or errors.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sched_core::app::ContainerSpec;
use sched_core::scheduler::Command;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::ApiError;
use crate::limits::{Caller, RateLimiter};
use drover_time::Clock;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything; changes nothing.
    ReadOnly,
    /// Also changes apps and jobs, but not privileged containers or host
    /// volumes.
    Deployer,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name in the credentials file and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-only" => Ok(Role::ReadOnly),
            "deployer" => Ok(Role::Deployer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role `{other}`: read-only, deployer or admin")),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The name in the credentials file (`anonymous` when the API runs open).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// Marathon's answer to missing or wrong credentials (401).
pub const UNAUTHENTICATED_MESSAGE: &str = "Invalid username or password.";
/// Marathon's answer to a principal that may not do something (403).
pub const FORBIDDEN_MESSAGE: &str = "Not Authorized to perform this action!";
/// The 429 for too many password verifications from one address.
pub const THROTTLED_MESSAGE: &str = "Too many authentication attempts";
/// The realm of the `WWW-Authenticate` challenge.
pub const REALM: &str = "drover";

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is wrong (1-based line number).
    #[error("line {line}: {reason}")]
    Line {
        /// The line number.
        line: usize,
        /// What is wrong with it (never the hash).
        reason: String,
    },
    /// A secret cannot be hashed.
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}

#[derive(Clone)]
struct Entry {
    role: Role,
    /// The argon2id PHC string.
    hash: String,
}

/// The principals of a credentials file: name → role and argon2id hash.
#[derive(Clone, Default)]
pub struct CredentialsFile {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for CredentialsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and roles only: hashes stay out of logs.
        f.debug_map().entries(self.entries.iter().map(|(n, e)| (n, e.role))).finish()
    }
}

/// True for a principal name: `[A-Za-z0-9._@-]+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl CredentialsFile {
    /// Parses a credentials file: one `name:role:hash` per line; empty
    /// lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, CredentialsError> {
        let mut entries = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let bad = |reason: String| CredentialsError::Line { line, reason };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut parts = trimmed.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected `name:role:argon2id-hash`".into()));
            };
            if !valid_name(name) {
                return Err(bad("the name must be [A-Za-z0-9._@-]+".into()));
            }
            let role = role.parse::<Role>().map_err(bad)?;
            let parsed = PasswordHash::new(hash)
                .map_err(|_| bad(format!("the hash of `{name}` is not a PHC string")))?;
            if parsed.algorithm != Algorithm::Argon2id.ident() {
                return Err(bad(format!("the hash of `{name}` is not argon2id")));
            }
            if entries.insert(name.to_owned(), Entry { role, hash: hash.to_owned() }).is_some() {
                return Err(bad(format!("`{name}` appears twice")));
            }
        }
        Ok(CredentialsFile { entries })
    }

    /// Reads and parses a credentials file.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The number of principals.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no principal is defined.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// An argon2id PHC hash of `secret`, with a random salt.
pub fn hash_secret(secret: &str) -> Result<String, CredentialsError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialsError::Hash(e.to_string()))
}

/// A new random secret: 32 bytes, URL-safe base64 (no `:`).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The line of a credentials file for `name` with `role` and `secret`.
pub fn credentials_line(name: &str, role: Role, secret: &str) -> Result<String, CredentialsError> {
    if !valid_name(name) {
        return Err(CredentialsError::Line {
            line: 0,
            reason: "the name must be [A-Za-z0-9._@-]+".into(),
        });
    }
    Ok(format!("{name}:{role}:{}", hash_secret(secret)?))
}

/// Successful verifications remembered at most (then forgotten at once).
const CACHE_ENTRIES: usize = 4096;
/// Argon2 verifications run at once (each takes memory and a core).
const PARALLEL_VERIFICATIONS: usize = 2;

enum Mode {
    Open,
    Credentials(CredentialsFile),
}

struct Inner {
    mode: Mode,
    privileged_role: Role,
    /// SHA-256 of `name \0 secret` → the principal it authenticated.
    verified: Mutex<HashMap<[u8; 32], Principal>>,
    verifying: Semaphore,
    /// Password verifications (cache misses) per caller address, so a
    /// flood of wrong credentials costs a bounded number of argon2 runs.
    attempts: std::sync::OnceLock<AttemptLimit>,
}

/// The verification rate limit and the clock it reads.
struct AttemptLimit {
    bucket: Mutex<RateLimiter>,
    clock: Arc<dyn Clock>,
    per_second: u32,
}

/// The API's authentication and authorization settings, shared by every
/// request.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.0.mode {
            Mode::Open => "open".to_owned(),
            Mode::Credentials(c) => format!("{} principals", c.len()),
        };
        f.debug_struct("Auth")
            .field("mode", &mode)
            .field("privileged_role", &self.0.privileged_role)
            .finish()
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth::open()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No or wrong credentials: 401 / UNAUTHENTICATED.
    Unauthenticated,
    /// Authenticated, but the role does not allow it: 403 / PERMISSION_DENIED.
    Forbidden,
    /// Too many password verifications from the caller's address: 429 with
    /// `Retry-After` / RESOURCE_EXHAUSTED.
    Throttled {
        /// Seconds until the next attempt is admitted.
        retry_after_secs: u64,
        /// The configured attempts per second.
        per_second: u32,
    },
}

impl Auth {
    fn build(mode: Mode, privileged_role: Role) -> Self {
        Auth(Arc::new(Inner {
            mode,
            privileged_role,
            verified: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(PARALLEL_VERIFICATIONS),
            attempts: std::sync::OnceLock::new(),
        }))
    }

    /// Limits password verifications (requests whose credentials are not
    /// already known good) to `per_second` per caller address, bursts of
    /// twice that; beyond, 429 before any verification. 0: no limit.
    pub fn limit_attempts(self, per_second: u32, clock: Arc<dyn Clock>) -> Self {
        if per_second > 0 {
            let bucket = RateLimiter::new(per_second, per_second.saturating_mul(2), 10_000);
            let limit = AttemptLimit { bucket: Mutex::new(bucket), clock, per_second };
            let _ = self.0.attempts.set(limit);
        }
        self
    }

    /// Takes one verification attempt of `caller`.
    fn admit_attempt(&self, caller: &Caller) -> Result<(), Denied> {
        let Some(limit) = self.0.attempts.get() else { return Ok(()) };
        let now = limit.clock.now();
        let mut bucket = limit.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        bucket.check(caller, now).map_err(|wait| Denied::Throttled {
            retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            per_second: limit.per_second,
        })
    }

    /// Everyone is an anonymous admin.
    pub fn open() -> Self {
        Auth::build(Mode::Open, Role::Admin)
    }

    /// Only the principals of `credentials`; apps and jobs with privileged
    /// containers or host volumes need `privileged_role` (or more).
    pub fn with_credentials(credentials: CredentialsFile, privileged_role: Role) -> Self {
        Auth::build(Mode::Credentials(credentials), privileged_role)
    }

    /// True when everyone is an anonymous admin.
    pub fn is_open(&self) -> bool {
        matches!(self.0.mode, Mode::Open)
    }

    /// The principal of a request's `Authorization` header, sent by
    /// `caller` (whose password verifications are rate limited).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
    ) -> Result<Principal, Denied> {
        let credentials = match &self.0.mode {
            Mode::Open => return Ok(Principal { name: "anonymous".into(), role: Role::Admin }),
            Mode::Credentials(c) => c,
        };
        let (name, secret) = presented(headers).ok_or(Denied::Unauthenticated)?;
        let Some(entry) = credentials.entries.get(&name) else {
            self.admit_attempt(caller)?;
            // As slow as a wrong secret, so names cannot be told by timing.
            self.verify(dummy_hash().to_owned(), secret).await;
            return Err(Denied::Unauthenticated);
        };
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            h.update(name.as_bytes());
            h.update([0]);
            h.update(secret.as_bytes());
            h.finalize().into()
        };
        if let Some(p) = self.cache().get(&key) {
            return Ok(p.clone());
        }
        self.admit_attempt(caller)?;
        if !self.verify(entry.hash.clone(), secret).await {
            return Err(Denied::Unauthenticated);
        }
        let principal = Principal { name, role: entry.role };
        let mut cache = self.cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, principal.clone());
        Ok(principal)
    }

    /// Runs one argon2 verification off the async threads, at most
    /// [`PARALLEL_VERIFICATIONS`] at once.
    async fn verify(&self, hash: String, secret: String) -> bool {
        let Ok(_permit) = self.0.verifying.acquire().await else { return false };
        tokio::task::spawn_blocking(move || verify(&hash, &secret)).await.unwrap_or(false)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Principal>> {
        self.0.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The role a command needs: deployer, or the privileged role for apps
    /// and jobs with privileged containers or host volumes.
    pub fn required_role(&self, command: &Command) -> Role {
        let privileged = match command {
            Command::CreateApp { spec, .. } => privileged(spec.container.as_ref()),
            Command::PutApps { specs, .. } => {
                specs.iter().any(|s| privileged(s.container.as_ref()))
            }
            Command::PutJob(job) => privileged(job.container.as_ref()),
            _ => false,
        };
        if privileged { self.0.privileged_role.max(Role::Deployer) } else { Role::Deployer }
    }

    /// Checks that the principal running `command` may (the one check
    /// every write passes, in [`crate::ApiState::run`]). Without a
    /// principal (a command run outside the middleware) only an open API
    /// allows it.
    pub fn authorize_command(
        &self,
        principal: Option<&Principal>,
        command: &Command,
    ) -> Result<(), ApiError> {
        if self.is_open() {
            return Ok(());
        }
        match principal {
            Some(p) if p.role >= self.required_role(command) => Ok(()),
            _ => Err(ApiError::Status(StatusCode::FORBIDDEN, FORBIDDEN_MESSAGE.into())),
        }
    }
}

/// A hash no secret matches (of a random one), verified for unknown names.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_secret(&generate_secret()).unwrap_or_default())
}

fn verify(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// Docker parameters that give a container the host's privileges.
const PRIVILEGED_PARAMETERS: &[&str] = &[
    "privileged",
    "volume",
    "v",
    "mount",
    "volumes-from",
    "device",
    "cap-add",
    "security-opt",
    "pid",
    "ipc",
    "userns",
    "uts",
    "cgroupns",
];

/// True for a privileged container, host volumes, or `docker run`
/// parameters that amount to either.
fn privileged(container: Option<&ContainerSpec>) -> bool {
    container.is_some_and(|c| {
        c.privileged
            || !c.volumes.is_empty()
            || c.parameters.iter().any(|(k, _)| PRIVILEGED_PARAMETERS.contains(&k.as_str()))
    })
}

/// The `name:secret` a request presents: HTTP Basic, or a bearer token
/// that is `name:secret`.
fn presented(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let pair = if scheme.eq_ignore_ascii_case("basic") {
        String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?
    } else if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim().to_owned()
    } else {
        return None;
    };
    let (name, secret) = pair.split_once(':')?;
    (!name.is_empty() && !secret.is_empty()).then(|| (name.to_owned(), secret.to_owned()))
}

tokio::task_local! {
    static PRINCIPAL: Principal;
}

/// The principal of the request being served (set by [`layer`]'s
/// middleware for the request's handler, REST and gRPC alike).
pub fn current() -> Option<Principal> {
    PRINCIPAL.try_with(Clone::clone).ok()
}

/// Runs `f` as `principal` (what the middleware does for each request).
pub async fn scope<F: Future>(principal: Principal, f: F) -> F::Output {
    PRINCIPAL.scope(principal, f).await
}

/// Paths served without credentials: `/ping`, the OpenAPI document and the
/// web UI's static files (the page then asks for a token).
pub fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/ping" | "/openapi.json" | "/ui") || path.starts_with("/ui/")
}

/// gRPC methods of `drover.v1.Drover` that only read.
const GRPC_READS: &[&str] = &[
    "GetState",
    "ListApps",
    "GetApp",
    "ListTasks",
    "ListDeployments",
    "ListJobs",
    "GetJob",
    "ListRuns",
    "Watch",
];

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The role a request needs, before its command is known: reads need
/// read-only, `DELETE /v2/leader` admin, anything else deployer.
pub fn required_role(method: &Method, path: &str, grpc: bool) -> Role {
    if grpc {
        let name = path.rsplit('/').next().unwrap_or_default();
        let read = path.starts_with("/drover.v1.Drover/") && GRPC_READS.contains(&name);
        return if read { Role::ReadOnly } else { Role::Deployer };
    }
    if *method == Method::GET || *method == Method::HEAD {
        Role::ReadOnly
    } else if *method == Method::DELETE && path.trim_end_matches('/') == "/v2/leader" {
        Role::Admin
    } else {
        Role::Deployer
    }
}

/// A refusal in the caller's protocol: Marathon's JSON (401 with a Basic
/// challenge, 403), or a gRPC status (UNAUTHENTICATED, PERMISSION_DENIED).
///
/// Scripts that say so (`X-Requested-With: XMLHttpRequest`, as the web UI
/// does) get a `Bearer` challenge instead of `Basic`, so browsers do not
/// pop up their own password dialog.
fn refuse(denied: Denied, grpc: bool, script: bool) -> Response {
    let (status, code, message) = match denied {
        Denied::Unauthenticated => (StatusCode::UNAUTHORIZED, 16, UNAUTHENTICATED_MESSAGE),
        Denied::Forbidden => (StatusCode::FORBIDDEN, 7, FORBIDDEN_MESSAGE),
        Denied::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, 8, THROTTLED_MESSAGE),
    };
    if grpc {
        let mut resp = Response::new(Body::empty());
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from(code));
        headers.insert("grpc-message", HeaderValue::from_static(message));
        return resp;
    }
    let mut resp = match denied {
        Denied::Throttled { retry_after_secs, per_second } => {
            let message = format!(
                "{THROTTLED_MESSAGE}: at most {per_second} per second from one address (bursts of {})",
                u64::from(per_second) * 2
            );
            let mut resp = (status, axum::Json(json!({"message": message}))).into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
        _ => (status, axum::Json(json!({"message": message}))).into_response(),
    };
    let scheme = if script { "Bearer" } else { "Basic" };
    if denied == Denied::Unauthenticated
        && let Ok(v) = HeaderValue::from_str(&format!("{scheme} realm=\"{REALM}\""))
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

async fn authenticate(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let grpc = is_grpc(req.headers());
    let script = req
        .headers()
        .get("x-requested-with")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"));
    let caller = Caller::of(req.extensions());
    let principal = match auth.authenticate(req.headers(), &caller).await {
        Ok(p) => p,
        Err(denied) => return refuse(denied, grpc, script),
    };
    if principal.role < required_role(req.method(), req.uri().path(), grpc) {
        tracing::info!(
            principal = %principal.name,
            method = %req.method(),
            path = %req.uri().path(),
            "Refused a request the principal's role does not allow."
        );
        return refuse(Denied::Forbidden, grpc, script);
    }
    req.extensions_mut().insert(principal.clone());
    scope(principal, next.run(req)).await
}

/// `router` (REST, and gRPC when added by `sched_grpc::with_grpc`) behind
/// authentication and request authorization: add it last, so it is the
/// outermost layer.
pub fn layer(router: Router, auth: Auth) -> Router {
    router.layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

#[cfg(test)]
mod tests;
