//! Limits on what one caller may ask of the API: the size of a request
//! body, the nesting depth of its JSON, concurrent event streams (`/v2/events`
//! and gRPC `Watch`) and the request rate.
//!
//! Limits apply per [`Caller`]: the authenticated [`Principal`] when the
//! authentication layer put one into the request's extensions, else the
//! peer's IP address (so an open API, whose callers all are `anonymous`,
//! still tells them apart).
//!
//! [`enforce`] is the REST API's middleware. It answers in the API's own
//! error shapes — Marathon's, or Chronos' on `/v1/scheduler` — before a
//! handler runs: 429 with `Retry-After` past the rate, 413 for a body larger
//! than [`LimitsConfig::max_request_body_bytes`] (with or without
//! `Content-Length`: the body is read through a limit, never whole first),
//! 400 for JSON nested deeper than [`LimitsConfig::max_json_depth`]
//! (counted by a scan without recursion, before anything is parsed).
//!
//! The rate limiter ([`RateLimiter`]) is a pure token bucket per caller with
//! the time passed in, its memory bounded: buckets that refilled are
//! dropped, and callers beyond [`MAX_TRACKED_CALLERS`] share one bucket.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drover_time::Timestamp;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::auth::Principal;
use crate::conn::Peer;
use crate::{ApiError, ApiState, ChronosError};

/// Default [`LimitsConfig::max_request_body_bytes`]: 8 MiB.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 8 << 20;
/// Default [`LimitsConfig::max_json_depth`].
pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
/// Default [`LimitsConfig::max_event_streams_per_principal`].
pub const DEFAULT_MAX_EVENT_STREAMS_PER_PRINCIPAL: usize = 32;
/// Default [`LimitsConfig::rate_limit_per_second`].
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 200;
/// Default [`LimitsConfig::rate_limit_burst`].
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 400;
/// Default [`LimitsConfig::max_auth_attempts_per_second`].
pub const DEFAULT_MAX_AUTH_ATTEMPTS_PER_SECOND: u32 = 10;
/// The most callers the rate limiter keeps a bucket for; callers beyond
/// share one bucket until idle buckets are dropped.
pub const MAX_TRACKED_CALLERS: usize = 10_000;

/// How often a full rate-limiter table is swept at most.
const SWEEP_FULL_EVERY: Duration = Duration::from_millis(100);

/// The principal name the authentication layer gives callers of an open
/// API; they are told apart by address instead.
const ANONYMOUS: &str = "anonymous";

/// The limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Largest request body, in bytes (413 beyond).
    pub max_request_body_bytes: usize,
    /// Deepest nesting of arrays and objects in a JSON body (400 beyond).
    pub max_json_depth: usize,
    /// Concurrent `/v2/events` streams and gRPC `Watch` streams, each, per
    /// caller (429 / RESOURCE_EXHAUSTED beyond); 0: no limit.
    pub max_event_streams_per_principal: usize,
    /// Requests per second per caller, sustained (429 beyond); 0: no limit.
    pub rate_limit_per_second: u32,
    /// Requests a caller may send at once above the sustained rate.
    pub rate_limit_burst: u32,
    /// Password verifications per second per caller address, bursts of
    /// twice that (429 beyond, before verifying; see
    /// [`Auth::limit_attempts`](crate::auth::Auth::limit_attempts)); 0: no limit.
    pub max_auth_attempts_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_event_streams_per_principal: DEFAULT_MAX_EVENT_STREAMS_PER_PRINCIPAL,
            rate_limit_per_second: DEFAULT_RATE_LIMIT_PER_SECOND,
            rate_limit_burst: DEFAULT_RATE_LIMIT_BURST,
            max_auth_attempts_per_second: DEFAULT_MAX_AUTH_ATTEMPTS_PER_SECOND,
        }
    }
}

/// Whom a limit counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Caller {
    /// An authenticated principal, by name.
    Principal(String),
    /// An unauthenticated (or anonymous) caller, by peer address.
    Ip(IpAddr),
    /// Neither is known (socket-free tests).
    Unknown,
}

impl Caller {
    /// The caller of a request with these extensions.
    pub fn of(extensions: &Extensions) -> Caller {
        if let Some(p) = extensions.get::<Principal>()
            && p.name != ANONYMOUS
        {
            return Caller::Principal(p.name.clone());
        }
        if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<Peer>>() {
            return Caller::Ip(peer.addr.ip());
        }
        match extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => Caller::Ip(addr.ip()),
            None => Caller::Unknown,
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Principal(name) => write!(f, "principal {name}"),
            Caller::Ip(ip) => write!(f, "address {ip}"),
            Caller::Unknown => f.write_str("an unknown caller"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Caller::of(&parts.extensions))
    }
}

/// One caller's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Token buckets per caller: `per_second` tokens flow in, at most `burst`
/// are kept, a request takes one. Pure: the time is an input.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_callers: usize,
    buckets: HashMap<Caller, Bucket>,
    /// Shared by callers that found the table full.
    overflow: Option<Bucket>,
    last_sweep: Timestamp,
}

impl RateLimiter {
    /// A limiter of `per_second` requests (0: unlimited) with bursts of
    /// `burst` (at least 1), tracking at most `max_callers` callers.
    pub fn new(per_second: u32, burst: u32, max_callers: usize) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            max_callers: max_callers.max(1),
            buckets: HashMap::new(),
            overflow: None,
            last_sweep: Timestamp::from_millis(0),
        }
    }

    /// Callers with a bucket of their own.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The time a bucket takes to fill up from empty.
    fn refill_time(&self) -> Duration {
        Duration::try_from_secs_f64(self.burst / self.per_second)
            .unwrap_or(Duration::MAX)
            .max(Duration::from_secs(1))
    }

    fn refill(&self, bucket: &mut Bucket, now: Timestamp) {
        let elapsed = now.since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        if now > bucket.at {
            bucket.at = now;
        }
    }

    /// Drops the buckets that filled up again: they are as good as new.
    fn sweep(&mut self, now: Timestamp) {
        let (per_second, burst) = (self.per_second, self.burst);
        self.buckets.retain(|_, b| b.tokens + now.since(b.at).as_secs_f64() * per_second < burst);
        self.last_sweep = now;
    }

    /// Takes one token for `caller` at `now`; when there is none, how long
    /// until there is one.
    pub fn check(&mut self, caller: &Caller, now: Timestamp) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let since_sweep = now.since(self.last_sweep);
        let full = self.buckets.len() >= self.max_callers && !self.buckets.contains_key(caller);
        // A full table is swept at most every 100 ms (a sweep is linear).
        if since_sweep >= self.refill_time() || (full && since_sweep >= SWEEP_FULL_EVERY) {
            self.sweep(now);
        }
        let fresh = Bucket { tokens: self.burst, at: now };
        let mut bucket = if let Some(b) = self.buckets.get(caller) {
            *b
        } else if self.buckets.len() < self.max_callers {
            fresh
        } else {
            self.overflow.unwrap_or(fresh)
        };
        self.refill(&mut bucket, now);
        let result = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)))
        };
        if self.buckets.contains_key(caller) || self.buckets.len() < self.max_callers {
            self.buckets.insert(caller.clone(), bucket);
        } else {
            self.overflow = Some(bucket);
        }
        result
    }
}

/// Open streams per caller.
type Slots = Arc<Mutex<HashMap<Caller, usize>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A caller's place among its concurrent streams, given back when dropped
/// (with the stream's body).
#[derive(Debug)]
pub struct StreamSlot {
    caller: Caller,
    slots: Slots,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut slots = lock(&self.slots);
        if let Some(n) = slots.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slots.remove(&self.caller);
            }
        }
    }
}

/// The limits in force, with the state they keep (shared by the REST and
/// gRPC APIs through [`ApiState`]).
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    rate: Mutex<RateLimiter>,
    event_streams: Slots,
    watch_streams: Slots,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(LimitsConfig::default())
    }
}

/// Which kind of stream a slot is for; each kind is counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `/v2/events`.
    Events,
    /// gRPC `Watch`.
    Watch,
}

impl Limits {
    /// Limits as configured.
    pub fn new(config: LimitsConfig) -> Self {
        Limits {
            config,
            rate: Mutex::new(RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_burst,
                MAX_TRACKED_CALLERS,
            )),
            event_streams: Slots::default(),
            watch_streams: Slots::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// Counts one request of `caller` at `now`; `Err` holds how long to
    /// wait before the next is admitted.
    pub fn check_rate(&self, caller: &Caller, now: Timestamp) -> Result<(), Duration> {
        lock(&self.rate).check(caller, now)
    }

    fn slots(&self, kind: StreamKind) -> &Slots {
        match kind {
            StreamKind::Events => &self.event_streams,
            StreamKind::Watch => &self.watch_streams,
        }
    }

    /// A slot for one more stream of `caller`, or `None` when it has
    /// [`LimitsConfig::max_event_streams_per_principal`] open.
    pub fn open_stream(&self, kind: StreamKind, caller: &Caller) -> Option<StreamSlot> {
        let slots = self.slots(kind);
        let mut open = lock(slots);
        let n = open.entry(caller.clone()).or_insert(0);
        let max = self.config.max_event_streams_per_principal;
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot { caller: caller.clone(), slots: slots.clone() })
    }

    /// Streams of `kind` `caller` has open.
    pub fn open_streams(&self, kind: StreamKind, caller: &Caller) -> usize {
        lock(self.slots(kind)).get(caller).copied().unwrap_or(0)
    }

    /// The error for a caller past its stream limit.
    pub fn streams_message(&self) -> String {
        format!(
            "Too many concurrent streams: at most {} per principal",
            self.config.max_event_streams_per_principal
        )
    }
}

/// JSON nested deeper than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The limit.
    pub max: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JSON nested deeper than {} levels", self.max)
    }
}

/// Checks that the arrays and objects of `json` nest at most `max` deep,
/// without parsing it (brackets inside strings do not count). Does not
/// check that it is JSON; linear, no recursion.
pub fn check_json_depth(json: &[u8], max: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A refusal in the shape of the route's API.
fn refuse(chronos: bool, code: StatusCode, message: String) -> Response {
    if chronos {
        ChronosError { code, message }.into_response()
    } else {
        ApiError::Status(code, message).into_response()
    }
}

/// The REST API's limits (see the module docs), before any handler.
pub(crate) async fn enforce(State(s): State<ApiState>, request: Request, next: Next) -> Response {
    let config = *s.limits.config();
    let chronos = request.uri().path().starts_with("/v1/scheduler");
    let caller = Caller::of(request.extensions());
    if let Err(wait) = s.limits.check_rate(&caller, s.clock.now()) {
        tracing::debug!(caller = %caller, "Refusing a request over the rate limit.");
        let message = format!(
            "Too many requests: at most {} per second (bursts of {})",
            config.rate_limit_per_second, config.rate_limit_burst
        );
        let mut response = refuse(chronos, StatusCode::TOO_MANY_REQUESTS, message);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return response;
    }
    let max = config.max_request_body_bytes;
    let too_large = || {
        let message = format!("Request body too large: the limit is {max} bytes");
        refuse(chronos, StatusCode::PAYLOAD_TOO_LARGE, message)
    };
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > max as u64) {
        return too_large();
    }
    let bytes: Bytes = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            let message = format!("The request body could not be read: {e}");
            return refuse(chronos, StatusCode::BAD_REQUEST, message);
        }
    };
    if let Err(e) = check_json_depth(&bytes, config.max_json_depth) {
        return if chronos {
            ChronosError::bad_request(e.to_string()).into_response()
        } else {
            ApiError::MalformedJson(e.to_string()).into_response()
        };
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn ip(last: u8) -> Caller {
        Caller::Ip(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_bucket_admits_its_burst_then_the_rate() {
        let mut r = RateLimiter::new(10, 5, 100);
        let a = ip(1);
        for i in 0..5 {
            assert_eq!(r.check(&a, T), Ok(()), "request {i} of the burst");
        }
        let wait = r.check(&a, T).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Another caller has a bucket of its own.
        assert_eq!(r.check(&ip(2), T), Ok(()));
        // 100 ms later one token came back, and only one.
        let later = T.plus(Duration::from_millis(100));
        assert_eq!(r.check(&a, later), Ok(()));
        assert!(r.check(&a, later).is_err());
        // After a full refill the whole burst is back, never more.
        let much_later = later.plus(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(r.check(&a, much_later), Ok(()));
        }
        assert!(r.check(&a, much_later).is_err());
    }

    #[test]
    fn zero_rate_admits_everything() {
        let mut r = RateLimiter::new(0, 1, 1);
        for _ in 0..10_000 {
            assert_eq!(r.check(&ip(1), T), Ok(()));
        }
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn a_clock_going_back_gives_no_tokens() {
        let mut r = RateLimiter::new(1, 1, 10);
        assert_eq!(r.check(&ip(1), T), Ok(()));
        assert!(r.check(&ip(1), T.minus(Duration::from_secs(100))).is_err());
        assert!(r.check(&ip(1), T).is_err());
        assert_eq!(r.check(&ip(1), T.plus(Duration::from_secs(1))), Ok(()));
    }

    #[test]
    fn idle_callers_are_forgotten_and_the_table_is_bounded() {
        let mut r = RateLimiter::new(100, 10, 50);
        for i in 0..50u8 {
            assert_eq!(r.check(&ip(i), T), Ok(()));
        }
        assert_eq!(r.tracked(), 50);
        // Callers beyond the table share one bucket: 10 requests in all.
        let mut admitted = 0;
        for i in 50..=255u8 {
            admitted += usize::from(r.check(&ip(i), T).is_ok());
            assert_eq!(r.tracked(), 50);
        }
        assert_eq!(admitted, 10);
        // Once the buckets refilled they are dropped.
        let later = T.plus(Duration::from_secs(2));
        assert_eq!(r.check(&ip(1), later), Ok(()));
        assert_eq!(r.tracked(), 1);
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(check_json_depth(b"{\"a\":[1,{\"b\":[]}]}", 4), Ok(()));
        assert_eq!(check_json_depth(b"{\"a\":[1,{\"b\":[]}]}", 3), Err(TooDeep { max: 3 }));
        assert_eq!(check_json_depth(br#"{"a":"[[[[[[\"[[[["}"#, 1), Ok(()));
        assert_eq!(check_json_depth(br#"{"a\\":[[]]}"#, 2), Err(TooDeep { max: 2 }));
        assert_eq!(check_json_depth(b"", 0), Ok(()));
        assert_eq!(check_json_depth(b"[", 0), Err(TooDeep { max: 0 }));
        let deep = "[".repeat(1 << 20);
        assert_eq!(check_json_depth(deep.as_bytes(), 32), Err(TooDeep { max: 32 }));
        let flat = "[]".repeat(1 << 16);
        assert_eq!(check_json_depth(flat.as_bytes(), 1), Ok(()));
    }

    #[test]
    fn stream_slots_are_counted_per_caller_and_kind_and_given_back() {
        let limits = Limits::new(LimitsConfig {
            max_event_streams_per_principal: 2,
            ..LimitsConfig::default()
        });
        let a = Caller::Principal("alice".into());
        let first = limits.open_stream(StreamKind::Events, &a).unwrap();
        let second = limits.open_stream(StreamKind::Events, &a).unwrap();
        assert!(limits.open_stream(StreamKind::Events, &a).is_none());
        assert!(limits.open_stream(StreamKind::Events, &ip(1)).is_some());
        let watch = limits.open_stream(StreamKind::Watch, &a);
        assert!(watch.is_some());
        drop(first);
        assert_eq!(limits.open_streams(StreamKind::Events, &a), 1);
        let third = limits.open_stream(StreamKind::Events, &a);
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(limits.open_streams(StreamKind::Events, &a), 0);
        assert!(lock(&limits.event_streams).is_empty(), "no entry kept for idle callers");
        let unlimited =
            Limits::new(LimitsConfig { max_event_streams_per_principal: 0, ..Default::default() });
        let held: Vec<_> =
            (0..100).filter_map(|_| unlimited.open_stream(StreamKind::Watch, &a)).collect();
        assert_eq!(held.len(), 100);
    }

    #[test]
    fn anonymous_principals_are_told_apart_by_address() {
        use crate::auth::Role;
        let mut ext = Extensions::new();
        assert_eq!(Caller::of(&ext), Caller::Unknown);
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 1234))));
        assert_eq!(Caller::of(&ext), ip(9));
        ext.insert(Principal { name: ANONYMOUS.into(), role: Role::Admin });
        assert_eq!(Caller::of(&ext), ip(9));
        ext.insert(Principal { name: "ops".into(), role: Role::ReadOnly });
        assert_eq!(Caller::of(&ext), Caller::Principal("ops".into()));
    }
}
