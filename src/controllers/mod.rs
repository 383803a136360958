//! The controllers, one folder per kind, and what they share: the context (clients, metrics,
//! event recorder, settings) and per-object memory (failure counts for backoff, next checks).

pub mod children;
pub mod secret_ref;
pub mod secure_api_service;
pub mod timing;

use crate::metrics::Metrics;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, Resource};
use secret_ref::provider::SecretProvider;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings that shape every controller.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch only this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Objects reconciled in parallel, per controller.
    pub concurrency: u16,
    /// First retry delay after a transient failure; doubles per failure up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Retry delay after a permanent failure (the safety net when no change arrives).
    pub permanent_retry: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            permanent_retry: Duration::from_secs(300),
        }
    }
}

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub settings: Settings,
    pub secrets: Arc<dyn SecretProvider>,
    memory: Mutex<Memory>,
}

/// Per-object memory that must not live in status (no per-reconcile timestamps there).
#[derive(Default)]
struct Memory {
    failures: HashMap<String, u32>,
    next_checks: HashMap<String, Instant>,
}

impl Context {
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        secrets: Arc<dyn SecretProvider>,
    ) -> Arc<Self> {
        let reporter =
            Reporter { controller: crate::api::MANAGED_BY_VALUE.into(), instance: std::env::var("POD_NAME").ok() };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Self { client, metrics, recorder, settings, secrets, memory: Mutex::default() })
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more consecutive failure of `key` and returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut memory = self.memory();
        let count = memory.failures.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }

    pub fn clear_failures(&self, key: &str) {
        self.memory().failures.remove(key);
    }

    /// When `key` is next due for a check, if one is scheduled.
    pub fn next_check(&self, key: &str) -> Option<Instant> {
        self.memory().next_checks.get(key).copied()
    }

    pub fn schedule_check(&self, key: &str, at: Instant) {
        self.memory().next_checks.insert(key.to_owned(), at);
    }

    pub fn forget(&self, key: &str) {
        let mut memory = self.memory();
        memory.failures.remove(key);
        memory.next_checks.remove(key);
    }

    /// An Api in the watched scope: one namespace, or all.
    pub fn scoped<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        match &self.settings.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

/// `namespace/name` of an object, the key of per-object memory.
pub fn object_key<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}
