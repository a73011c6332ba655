//! The readiness latch behind `/readyz` and gRPC health.
//!
//! A service starts not ready, releases the latch once it can really serve (database
//! reachable, topics checked, state rebuilt), and withdraws it when shutdown begins so
//! load balancers stop sending traffic while it drains.

use tokio::sync::watch;

/// Shared readiness flag; clones observe the same latch.
#[derive(Debug, Clone)]
pub struct Readiness {
    sender: watch::Sender<bool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self { sender: watch::channel(false).0 }
    }
}

impl Readiness {
    /// A latch that starts not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the service ready to take traffic.
    pub fn set_ready(&self) {
        self.sender.send_replace(true);
    }

    /// Marks the service not ready (starting, draining or lost a dependency).
    pub fn set_not_ready(&self) {
        self.sender.send_replace(false);
    }

    /// Whether the service is ready now.
    pub fn is_ready(&self) -> bool {
        *self.sender.borrow()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }
}
