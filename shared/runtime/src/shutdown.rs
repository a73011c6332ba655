//! One cancellation tree for the whole process, cancelled by SIGTERM or SIGINT.
//!
//! Every long-running task holds a child token. On a signal the root is cancelled:
//! consumers stop polling, flush and commit, servers stop accepting and drain, all
//! bounded by each service's grace period.

use tokio_util::sync::CancellationToken;

/// The root of the process's cancellation tree.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    root: CancellationToken,
}

impl Shutdown {
    /// A new, untriggered shutdown root.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when shutdown begins; cancelling it affects only its subtree.
    pub fn token(&self) -> CancellationToken {
        self.root.child_token()
    }

    /// Begins shutdown.
    pub fn trigger(&self) {
        self.root.cancel();
    }

    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        self.root.is_cancelled()
    }

    /// Spawns a task that begins shutdown on the first SIGTERM or SIGINT.
    pub fn trigger_on_signals(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        #[cfg(unix)]
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let root = self.root.clone();
        Ok(tokio::spawn(async move {
            #[cfg(unix)]
            let terminate = sigterm.recv();
            #[cfg(not(unix))]
            let terminate = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = terminate => tracing::info!("SIGTERM received, shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
                () = root.cancelled() => return,
            }
            root.cancel();
        }))
    }
}
