//! Every log line of the process, captured in memory, for tests that prove what never appears
//! in a log. One subscriber per process: such tests run in their own process (nextest).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The captured log text.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the process's tracing subscriber with `filter`, writing here; `None` when the
    /// process already has one.
    pub fn install(filter: &str) -> Option<Self> {
        let logs = Self::default();
        let writer = logs.clone();
        // The operator's own subscriber hides kube-client's unredacted refusal lines; so does this.
        let installed = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish()
            .with(secure_api_operator::telemetry::hide_unredacted_refusals())
            .try_init();
        installed.is_ok().then_some(logs)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}
