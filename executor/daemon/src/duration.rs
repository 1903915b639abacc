//! Mesos' duration text, as the agent writes it in `MESOS_*` variables.
//!
//! The form is stout's `Duration::parse`: a non-negative decimal number
//! immediately followed by one of the units `ns`, `us`, `ms`, `secs`,
//! `mins`, `hrs`, `days`, `weeks` (e.g. `5secs`, `15mins`, `100ms`,
//! `1.5hrs`, `2days`).

use std::time::Duration;

/// Parses a Mesos duration; `None` when the text is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3_600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(value * unit_secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mesos_unit() {
        let cases = [
            ("15mins", Duration::from_secs(900)),
            ("5secs", Duration::from_secs(5)),
            ("100ms", Duration::from_millis(100)),
            ("2days", Duration::from_secs(172_800)),
            ("1weeks", Duration::from_secs(604_800)),
            ("3hrs", Duration::from_secs(10_800)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            ("1.5secs", Duration::from_millis(1_500)),
            (" 0secs\n", Duration::ZERO),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).unwrap_or_else(|| panic!("{text:?} did not parse"));
            let diff = got.abs_diff(want);
            assert!(diff < Duration::from_nanos(2), "{text:?}: {got:?} != {want:?}");
        }
    }

    #[test]
    fn rejects_what_stout_rejects() {
        for text in [
            "",
            "5",
            "secs",
            "-5secs",
            "5 secs",
            "5sec",
            "5s",
            "1.2.3secs",
            ".secs",
            "5SECS",
            "1e3secs",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
        assert_eq!(parse_duration("99999999999999999999999weeks"), None, "overflow is not a panic");
    }
}
