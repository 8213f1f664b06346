//! [`Shutdown`]: begun once when the server starts to stop. Long waits (dequeues, streams,
//! long polls, worker channels) end at once on it, so the drain is not held up by them.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// The shutdown signal: cloned into whatever waits long.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Shutdown {
    /// Begins the shutdown.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves once the shutdown has begun (at once if it has).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|begun| *begun).await;
        }
    }

    pub fn has_begun(&self) -> bool {
        *self.tx.borrow()
    }
}
