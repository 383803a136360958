//! secure-api-operator's test bed: what the tests, the benchmarks and the playground run the
//! operator against, and nothing the product needs.
//!
//! - [`emulator`]: an in-process Kubernetes API (our envtest) and Google Cloud's Secret Manager,
//!   Pub/Sub, API Gateway, API Keys, Service Usage, STS and IAM Credentials, over HTTP on loopback.
//! - [`dev`]: the playground (`dev`, `dev --demo`) and the example's stand-in service.
//! - [`prometheus`]: a real Prometheus server, for the canary gate's queries.
//! - [`cli`]: the `testbed` command line (the root package's example of that name).
//!
//! It depends on the operator's library; the operator never depends on it.

pub mod cli;
pub mod dev;
pub mod emulator;
pub mod listener;
pub mod prometheus;
pub mod telemetry;
