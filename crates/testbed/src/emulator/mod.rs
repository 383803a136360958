//! Emulators of the services the operator talks to. They are the test bed and the playground,
//! not the product, but they behave like the real services for everything the operator and the
//! official clients (kubectl, gcloud) use.

pub mod gcp;
pub mod kube;
pub mod serve;
