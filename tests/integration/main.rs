//! Integration tests, one binary with a module per area (one link step on two cores).

mod cli;
mod crds;
mod emulator_api;
mod emulator_crd;
mod emulator_hooks;
mod emulator_patch;
mod emulator_runtime;
mod harness;
mod kubectl;
mod run;
mod support;
