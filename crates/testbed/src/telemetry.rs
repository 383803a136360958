//! The playground logs into a file: its stdout is a report for people.

use secure_api_operator::cli::LogFormat;
use secure_api_operator::telemetry::install;
use std::path::Path;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Installs the global subscriber appending to the file at `path` (created or truncated).
pub fn init_to_file(format: LogFormat, filter: &str, path: &Path) -> Result<(), String> {
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot create the log file {}: {e}", path.display()))?;
    install(format, filter, BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
}
