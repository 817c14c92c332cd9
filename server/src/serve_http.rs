//! The HTTP accept loop: the axum router on hyper, with a header timeout and an idle timeout.
//!
//! `axum::serve` has neither, so a client that sends its request head byte by byte and never
//! finishes (slow loris) holds a connection and a task forever. This loop is `axum::serve`
//! with graceful shutdown plus [`crate::timed_io`]: a connection whose request head is not
//! complete within `header` of its first byte is closed, and a kept-alive connection may wait
//! `idle` between requests (longer than the 90 s client pools commonly keep idle connections,
//! so the relay does not close one under a client's request). Upgraded connections (the
//! phones' WebSockets) leave both timeouts; the hub closes them at shutdown. A request's
//! body must arrive whole within `body` of the end of its head ([`TimedBody`]); the JSON
//! extractor answers a late one `408 body_timeout`, and the connection is closed.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::timed_io::{Phase, TimedBody, TimedIo};

/// How long a request head may take, how long its body may take after it, and how long a
/// kept-alive connection may idle.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish its request in flight and returns once all have closed.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug + Clone + Send + Sync + 'static,
{
    // Dropping `stop_tx` tells every connection to finish; each holds a `done_rx` clone, so
    // `done_tx.closed()` resolves once the last one is gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let phase = Phase::new(timeouts.header, timeouts.idle);
        let io = TokioIo::new(TimedIo::new(io, phase.clone()));
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let serving = phase.serving();
            let now = tokio::time::Instant::now();
            // A configured timeout of decades means none (and must not overflow).
            let deadline = now
                .checked_add(timeouts.body)
                .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400));
            let mut req = req.map(|b| Body::new(TimedBody::new(b, deadline)));
            // The peer address, for handlers that throttle per source (`ConnectInfo`).
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(addr.clone()));
            let answer = app.clone().oneshot(req);
            async move {
                let res = answer.await;
                if matches!(&res, Ok(r) if r.status() == StatusCode::SWITCHING_PROTOCOLS) {
                    serving.upgraded();
                }
                res
            }
        });
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            // HTTP/1 only (the relay is built without HTTP/2): no version sniffing, so the
            // header deadline runs from the connection's start, silent clients included.
            let conn = http1::Builder::new()
                .serve_connection(io, service)
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
