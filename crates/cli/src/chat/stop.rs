//! Stopping on SIGTERM and SIGHUP as on Escape, so that the terminal is restored.

/// SIGTERM and SIGHUP, caught so that the terminal is restored then too.
pub struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    /// Starts listening for the signals.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::terminate())
                .and_then(|term| signal(SignalKind::hangup()).map(|hup| (term, hup)));
            Self {
                signals: signals.ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Completes when the process is asked to stop.
    pub async fn requested(&mut self) {
        #[cfg(unix)]
        if let Some((term, hup)) = &mut self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            return;
        }
        std::future::pending::<()>().await;
    }
}
