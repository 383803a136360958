//! Waiting on conditions, always with a deadline (never a fixed sleep).

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, failing the test with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until(what, deadline, || {
        let looked = check();
        async move { looked.await.ok_or_else(String::new) }
    })
    .await
}

/// Polls `check` until it returns `Ok`, failing the test after `deadline` with `what` and what
/// `check` saw last (its `Err`, unless empty).
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let give_up = Instant::now() + deadline;
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() >= give_up {
            match seen.is_empty() {
                true => panic!("timed out after {deadline:?} waiting for {what}"),
                false => panic!("timed out after {deadline:?} waiting for {what}; last seen: {seen}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `future`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future).await.unwrap_or_else(|_| panic!("test exceeded {DEADLINE:?}"))
}
