//! secure-api-operator: Google Cloud Secret Manager secrets into Kubernetes workloads, exact-version
//! rollouts on rotation, and Google Cloud API Gateway from declared routes.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that tests drive the same code.
//!
//! The test bed (`emulator`, `dev`) is behind the Cargo feature `testbed`, on by default; product
//! modules never import it, so `--no-default-features` builds the operator alone.

pub mod api;
pub mod cli;
pub mod controllers;
pub mod crdgen;
#[cfg(feature = "testbed")]
pub mod dev;
#[cfg(feature = "testbed")]
pub mod emulator;
pub mod gateway;
pub mod gcp;
pub mod hash_key;
pub mod http_listener;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod notifications;
pub mod operator;
pub mod provider;
pub mod runtime;
pub mod secret_data;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod workload;
