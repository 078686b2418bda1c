//! Background tasks that survive their own bugs. A loop spawned and
//! awaited only at shutdown dies silently when it panics: the sweeper, a
//! leader or a relay simply stops, for the rest of the process's life.
//! Here a panic is logged with the task's name, counted
//! (`background_task_panics_total{task}`), and the task started again after
//! a backoff; a task that returns is done.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Runs `make()` as the task `name`, again after each panic, until it
/// returns or `stop` is cancelled.
pub fn supervised<F, Fut>(name: &'static str, stop: CancellationToken, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        loop {
            if !panicked(name, tokio::spawn(make())).await {
                return;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    })
}

/// Runs `task` once; a panic is logged and counted, not restarted (for a
/// task whose owner starts a new one when it finds it gone).
pub fn watched<Fut>(name: &'static str, task: Fut) -> JoinHandle<()>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        panicked(name, tokio::spawn(task)).await;
    })
}

/// Waits for the task; answers whether it panicked (logged and counted).
async fn panicked(name: &'static str, task: JoinHandle<()>) -> bool {
    match task.await {
        Ok(()) => false,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            tracing::error!(task = name, panic = %why, "background task panicked; it is started again");
            metrics::counter!(m::TASK_PANICS, "task" => name).increment(1);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_started_again_until_it_returns() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = supervised("test", CancellationToken::new(), move || {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("a bug");
                }
            }
        });
        task.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two panics, then a run that returned");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_restarts() {
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = supervised("test", stop.clone(), move || {
            let runs = counted.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                panic!("always");
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
