//! Time as an input.
//!
//! Pure cores never read a clock: they take `now: Timestamp` as an argument.
//! Shells read time only through [`Clock`]; [`SystemClock`] is the single place
//! in the workspace that calls `SystemTime::now`, and [`ManualClock`] lets tests
//! drive virtual time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Wall-clock time in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// A timestamp from whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, with a fraction (the form Mesos uses).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// A timestamp from fractional seconds since the epoch (Mesos' form).
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_finite() { Timestamp((s * 1000.0).round() as i64) } else { Timestamp(0) }
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self - d`, saturating.
    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}ms", self.0)
    }
}

/// A source of the current time. Shells hold an `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "the one place that reads the system clock")]
    fn now(&self) -> Timestamp {
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// A small deterministic pseudo-random generator (SplitMix64).
///
/// Cores that need randomness (jitter, UUIDs) own one of these, seeded by the
/// shell, so a test with a fixed seed replays byte for byte.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// 16 random bytes shaped as an RFC 4122 version-4 UUID.
    pub fn uuid_v4(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        b
    }
}

/// Formats 16 bytes as a hyphenated lowercase UUID string.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_secs(10));
        assert_eq!(c.now(), Timestamp::from_millis(10_000));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now().as_millis(), 11_500);
        let shared = c.clone();
        shared.set(Timestamp::from_secs(1));
        assert_eq!(c.now().as_millis(), 1000);
    }

    #[test]
    fn uuid_v4_has_version_and_variant_bits() {
        let mut r = SplitMix64::new(7);
        for _ in 0..1000 {
            let u = r.uuid_v4();
            assert_eq!(u[6] >> 4, 4);
            assert_eq!(u[8] >> 6, 0b10);
            let s = format_uuid(&u);
            assert_eq!(s.len(), 36);
            assert_eq!(&s[14..15], "4");
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let f = a.next_f64();
        assert!((0.0..1.0).contains(&f));
    }

    #[test]
    fn timestamp_arithmetic_saturates_and_converts() {
        let t = Timestamp::from_secs(5);
        assert_eq!(t.plus(Duration::from_millis(250)).as_millis(), 5250);
        assert_eq!(t.minus(Duration::from_secs(10)).as_millis(), -5000);
        assert_eq!(t.since(Timestamp::from_secs(6)), Duration::ZERO);
        assert_eq!(Timestamp::from_secs_f64(1.5).as_millis(), 1500);
        assert_eq!(Timestamp::from_secs_f64(f64::NAN), Timestamp::EPOCH);
        assert!((Timestamp::from_millis(2500).as_secs_f64() - 2.5).abs() < 1e-9);
    }
}
