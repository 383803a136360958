//! Integration tests, one binary with a module per area (one link step on two cores).

mod chart;
mod cli;
mod crds;
mod dev;
mod emulator_api;
mod emulator_crd;
mod emulator_events;
mod emulator_hooks;
mod emulator_patch;
mod emulator_runtime;
mod gateway_config;
mod gcloud;
mod gcloud_api_gateway;
mod gcp_api_gateway_client;
mod gcp_client;
mod gcp_iam;
mod kubectl;
mod kubectl_create;
mod leader_election;
mod render;
mod run;
mod secret_ref;
mod secure_api_service;
mod secure_api_service_failures;
mod sentinel;
mod support;
