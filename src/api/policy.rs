//! Policies that more than one kind shares.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What deleting the custom resource does to what it created.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}
