//! The HTTP accept loop: the axum router on hyper, with a header read timeout.
//!
//! `axum::serve` sets no timer on hyper's connection builder, so hyper's header read timeout
//! is off and a client that sends its request head byte by byte and never finishes (slow
//! loris) holds a connection and a task forever. This loop is `axum::serve` with graceful
//! shutdown plus that timeout: a connection whose request head is not complete within
//! `header_timeout` is closed. Upgraded connections (the phones' WebSockets) leave hyper once
//! upgraded; the hub closes them at shutdown.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight and returns once all have closed.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    // Dropping `stop_tx` tells every connection to finish; each holds a `done_rx` clone, so
    // `done_tx.closed()` resolves once the last one is gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, _addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            // HTTP/1 only (the relay is built without HTTP/2): no version sniffing, so the
            // header timer runs from the first read, silent clients included.
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!("connection ended: {e}");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}
