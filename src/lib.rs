//! secure-api-operator: Google Cloud Secret Manager secrets into Kubernetes workloads, exact-version
//! rollouts on rotation, and Google Cloud API Gateway from declared routes.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that tests drive the same code.
//!
//! The test bed (the emulators, the playground) is a crate of its own, `crates/testbed`: nothing
//! here imports it, and a build of this crate compiles none of it.
//!
//! Layers, each importing only those before it: `api` → `gcp`, `workload`, `gateway` → `runtime`
//! → `identity`, `notifications` → `controllers` → `cli` (the arguments) → `operator`.

pub mod api;
pub mod cli;
pub mod controllers;
pub mod crdgen;
pub mod gateway;
pub mod gcp;
pub mod hash_key;
pub mod http_listener;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod notifications;
pub mod operator;
pub mod prometheus;
pub mod provider;
pub mod runtime;
pub mod secret_data;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod workload;
