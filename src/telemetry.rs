//! Logging through `tracing`: an env-filter directive and a text or JSON format, on stderr (stdout
//! stays clean for command output such as `crds`), or into any writer ([`install`]).

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Output format of the logs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where kube-client logs a failed call: at debug it prints the API server's answer whole
/// (`Unsuccessful: Status { message: ... }`), and that answer may quote what was written — a
/// Secret's keys, whatever a webhook saw of the object. The operator reports refusals itself,
/// redacted (see `runtime::refusal`).
const UNREDACTED_REFUSALS: &str = "kube_client::client";

/// Drops kube-client's debug and trace lines of [`UNREDACTED_REFUSALS`] (its module only, not
/// its request spans), whatever the log filter asks for: no filter may write a secret out.
pub fn hide_unredacted_refusals() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    FilterFn::new(|metadata| !may_print_a_refusal(metadata.target(), *metadata.level()))
}

/// Whether a line of `target` at `level` may print an API server's answer whole.
fn may_print_a_refusal(target: &str, level: Level) -> bool {
    target == UNREDACTED_REFUSALS && level >= Level::DEBUG
}

/// Installs the global subscriber writing to stderr. `RUST_LOG`, when set, wins over `filter`.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    // Colours only for a person at a terminal, never into log files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(format, filter, BoxMakeWriter::new(std::io::stderr), ansi)
}

/// Installs the global subscriber writing to `writer` (the test bed's playground logs to a file).
pub fn install(format: LogFormat, filter: &str, writer: BoxMakeWriter, ansi: bool) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(&from_env),
        _ => EnvFilter::try_new(filter),
    }
    .map_err(|error| format!("invalid log filter: {error}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.finish().with(hide_unredacted_refusals()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(hide_unredacted_refusals())
            .try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kube_clients_own_debug_and_trace_lines_are_hidden() {
        assert!(may_print_a_refusal("kube_client::client", Level::DEBUG));
        assert!(may_print_a_refusal("kube_client::client", Level::TRACE));
        assert!(!may_print_a_refusal("kube_client::client", Level::WARN));
        assert!(!may_print_a_refusal("kube_client::client::builder", Level::DEBUG));
        assert!(!may_print_a_refusal("secure_api_operator::controllers", Level::TRACE));
    }
}
