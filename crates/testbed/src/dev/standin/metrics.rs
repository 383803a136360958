//! The stand-in's request counters (pure): requests its revisions answered, by revision and
//! status class, in Prometheus' text format — what a canary's `analysis.prometheus` query reads
//! once a real Prometheus scrapes the stand-in's metrics endpoint:
//!
//! ```text
//! secureapi_standin_requests_total{revision="secure-api-68571fc25f",code="5xx"} 12
//! ```
//!
//! A revision's three classes start at 0 as soon as it is known, before its first request: a
//! series that appeared only with its first error would hide that error from `rate()`.

use hyper::StatusCode;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The counter's name.
pub const REQUESTS_TOTAL: &str = "secureapi_standin_requests_total";
/// The status classes every known revision has a series for.
const CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// Requests answered, by revision and status class (`2xx`, `4xx`, `5xx`, or another `Nxx`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    counts: BTreeMap<(String, String), u64>,
}

impl Requests {
    /// Gives `revision` its series at 0, if it has none yet.
    pub fn register(&mut self, revision: &str) {
        for class in CLASSES {
            self.counts.entry((revision.to_owned(), class.to_owned())).or_insert(0);
        }
    }

    /// Counts one request `revision` answered with `status`.
    pub fn record(&mut self, revision: &str, status: StatusCode) {
        self.register(revision);
        let class = format!("{}xx", status.as_u16() / 100);
        *self.counts.entry((revision.to_owned(), class)).or_insert(0) += 1;
    }

    /// The requests `revision` answered with a status of `class` (`"5xx"`).
    pub fn count(&self, revision: &str, class: &str) -> u64 {
        self.counts.get(&(revision.to_owned(), class.to_owned())).copied().unwrap_or(0)
    }

    /// The counters in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut text = format!(
            "# HELP {REQUESTS_TOTAL} Requests the stand-in's revisions answered, by revision and status class.\n# TYPE {REQUESTS_TOTAL} counter\n"
        );
        for ((revision, class), count) in &self.counts {
            let _ = writeln!(text, "{REQUESTS_TOTAL}{{revision=\"{}\",code=\"{class}\"}} {count}", escape(revision));
        }
        text
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_by_revision_and_status_class_from_zero() {
        let mut requests = Requests::default();
        requests.register("r1");
        requests.record("r1", StatusCode::OK);
        requests.record("r1", StatusCode::CREATED);
        requests.record("r2", StatusCode::INTERNAL_SERVER_ERROR);
        requests.record("r2", StatusCode::SERVICE_UNAVAILABLE);
        requests.record("r2", StatusCode::UNAUTHORIZED);
        assert_eq!((requests.count("r1", "2xx"), requests.count("r1", "5xx")), (2, 0));
        assert_eq!((requests.count("r2", "2xx"), requests.count("r2", "4xx"), requests.count("r2", "5xx")), (0, 1, 2));
        let text = requests.render();
        let expected = "\
# HELP secureapi_standin_requests_total Requests the stand-in's revisions answered, by revision and status class.
# TYPE secureapi_standin_requests_total counter
secureapi_standin_requests_total{revision=\"r1\",code=\"2xx\"} 2
secureapi_standin_requests_total{revision=\"r1\",code=\"4xx\"} 0
secureapi_standin_requests_total{revision=\"r1\",code=\"5xx\"} 0
secureapi_standin_requests_total{revision=\"r2\",code=\"2xx\"} 0
secureapi_standin_requests_total{revision=\"r2\",code=\"4xx\"} 1
secureapi_standin_requests_total{revision=\"r2\",code=\"5xx\"} 2
";
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_are_escaped_and_no_revision_no_series() {
        assert_eq!(Requests::default().render().lines().count(), 2, "the HELP and TYPE lines only");
        let mut requests = Requests::default();
        requests.record("a\"b\\c\nd", StatusCode::OK);
        assert!(requests.render().contains(r#"{revision="a\"b\\c\nd",code="2xx"} 1"#), "{}", requests.render());
    }
}
