//! Go's duration text, as cel-go reads and prints CEL durations: `duration('1h30m')` parses with
//! `time.ParseDuration`, `string(d)` prints seconds with the fraction needed (`5400s`, `1.5s`).

use regex::Regex;
use std::sync::LazyLock;

/// Go's duration grammar: a sign only in front, then `<number><unit>` terms, or a bare zero.
/// (`kube::core::Duration` reads more: `""` and `"+"` as zero, a sign inside a term.)
static GO_SYNTAX: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$").ok());

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-300ms`, `0`): its grammar checked here, its
/// value read by `kube::core::Duration`, the project's one duration parser; None when the text is
/// not a duration.
pub fn parse(text: &str) -> Option<i64> {
    if !GO_SYNTAX.as_ref().is_some_and(|syntax| syntax.is_match(text)) {
        return None;
    }
    let parsed: kube::core::Duration = text.parse().ok()?;
    let nanos = i64::try_from(std::time::Duration::from(parsed).as_nanos()).ok()?;
    Some(if parsed.is_negative() { -nanos } else { nanos })
}

/// A duration as cel-go's `string()` prints it: seconds with the fraction needed (`3600s`, `1.5s`).
pub fn format(nanos: i64) -> String {
    let seconds = nanos / 1_000_000_000;
    let fraction = (nanos % 1_000_000_000).unsigned_abs();
    if fraction == 0 {
        return format!("{seconds}s");
    }
    let sign = if nanos < 0 && seconds == 0 { "-" } else { "" };
    let digits = format!("{fraction:09}");
    format!("{sign}{seconds}.{}s", digits.trim_end_matches('0'))
}
