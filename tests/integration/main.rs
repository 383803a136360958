//! Integration tests, one binary with a module per area (one link step on two cores).

mod cli;
mod crds;
mod run;
mod support;
