//! Two connection timeouts that hyper does not keep apart: a request head must be complete
//! within `header` of its first byte (of the connection, for the first request), while a
//! kept-alive connection may wait `idle` for its next request.
//!
//! hyper's own `header_read_timeout` also runs while a kept-alive connection waits, so a short
//! one (against slow-loris clients) closes connections that clients still hold in their
//! pools, and a request sent on one just as the relay closes it fails ("connection closed
//! before message completed"), a `POST` included. Here [`TimedIo`] wraps the socket and fails
//! a read once the deadline of the connection's [`Phase`] has passed; the service tells the
//! phase when hyper handed it a request (the head is complete) and when it answered.
//!
//! While a request is served the socket has no deadline (a long-poll may wait minutes for its
//! answer), so the request's body gets its own: [`TimedBody`] wraps it and fails with
//! [`BodyTimeout`] once the whole body has not arrived within `body_read_timeout` of the end of
//! its head. A client trickling its body byte by byte is answered `408` and closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a request head, until the deadline.
    Head(Instant),
    /// Between requests with nothing read yet, until the deadline.
    Idle(Instant),
    /// A request is being served (its body read, its answer computed): no deadline.
    Serving,
    /// Upgraded to a WebSocket, whose link keeps its own heartbeats: no deadline.
    Upgraded,
}

/// Where one connection is, shared by its socket wrapper and its service.
#[derive(Debug)]
pub struct Phase {
    state: Mutex<State>,
    /// The task last left waiting in a read, woken when a deadline starts while it waits.
    reader: Mutex<Option<Waker>>,
    header: Duration,
    idle: Duration,
}

impl Phase {
    pub fn new(header: Duration, idle: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::Head(Instant::now() + header)),
            reader: Mutex::new(None),
            header,
            idle,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// hyper handed the service a request: its head is complete. The guard marks the end.
    pub fn serving(self: &Arc<Self>) -> Serving {
        *self.lock() = State::Serving;
        Serving(self.clone())
    }

    /// Bytes arrived: on an idle connection, a new request head has begun.
    fn bytes_read(&self) {
        let mut s = self.lock();
        if let State::Idle(_) = *s {
            *s = State::Head(Instant::now() + self.header);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.lock() {
            State::Head(d) | State::Idle(d) => Some(d),
            State::Serving | State::Upgraded => None,
        }
    }
}

/// Held while a request is served; dropping it (answered, failed or cancelled) starts the
/// idle wait, unless [`Serving::upgraded`] was called.
#[derive(Debug)]
pub struct Serving(Arc<Phase>);

impl Serving {
    /// The answer was `101 Switching Protocols`: the connection is no longer HTTP.
    pub fn upgraded(&self) {
        *self.0.lock() = State::Upgraded;
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        if *s == State::Serving {
            *s = State::Idle(Instant::now() + self.0.idle);
            drop(s);
            // hyper may already wait in a read, polled while there was no deadline.
            let waiting = self
                .0
                .reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(w) = waiting {
                w.wake();
            }
        }
    }
}

/// A socket whose reads fail with `TimedOut` once its phase's deadline has passed.
#[derive(Debug)]
pub struct TimedIo<S> {
    inner: S,
    phase: Arc<Phase>,
    /// Made when a read first waits under a deadline; dropped once upgraded (a phone's link
    /// lives for days and never needs it).
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedIo<S> {
    pub fn new(inner: S, phase: Arc<Phase>) -> Self {
        Self {
            inner,
            phase,
            sleep: None,
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no complete request head in time, or idle too long",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read
            && buf.filled().len() > before
        {
            self.phase.bytes_read();
        }
        let Some(deadline) = self.phase.deadline() else {
            if *self.phase.lock() == State::Upgraded {
                self.sleep = None;
            } else if read.is_pending() {
                *self.phase.reader.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(cx.waker().clone());
            }
            return read;
        };
        if Instant::now() >= deadline {
            return Poll::Ready(Err(timed_out()));
        }
        if read.is_ready() {
            return read;
        }
        // Waiting for bytes: wake at the deadline too.
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error of a [`TimedBody`] whose deadline passed before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `err` or one of its sources is a [`BodyTimeout`] (axum wraps body errors in its
/// rejections).
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut e = Some(err);
    while let Some(cur) = e {
        if cur.is::<BodyTimeout>() {
            return true;
        }
        e = cur.source();
    }
    false
}

/// A request body that must end by `deadline`: a wait for a frame that lasts past it fails
/// with [`BodyTimeout`]. Bytes already received are still handed out after the deadline (a
/// handler that started reading late is not the client's fault); a client can only gain
/// what it sent faster than it was read, which the body size limit bounds.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    /// Made when a frame is first waited for.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            sleep: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(120);

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_ends_after_the_header_timeout() {
        let (_client, server) = tokio::io::duplex(64);
        let mut io = TimedIo::new(server, Phase::new(HEAD, IDLE));
        let t = Instant::now();
        let err = io.read(&mut [0; 8]).await.expect_err("times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(t.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_does_not_extend_its_deadline() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = TimedIo::new(server, Phase::new(HEAD, IDLE));
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if client.write_all(b"G").await.is_err() {
                    return;
                }
            }
        });
        let mut buf = [0; 8];
        let err = loop {
            match io.read(&mut buf).await {
                Ok(n) => assert_eq!(n, 1),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(t.elapsed(), HEAD);
        writer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_alive_connection_idles_longer_than_a_head_may_take() {
        let (mut client, server) = tokio::io::duplex(64);
        let phase = Phase::new(HEAD, IDLE);
        let mut io = TimedIo::new(server, phase.clone());
        client.write_all(b"GET").await.expect("write");
        assert_eq!(io.read(&mut [0; 8]).await.expect("read"), 3);
        // The head completed and the request was served, taking longer than HEAD.
        let serving = phase.serving();
        tokio::time::sleep(HEAD * 3).await;
        drop(serving);
        // Idle for most of IDLE (far past HEAD): the next request still gets through.
        tokio::time::sleep(IDLE - Duration::from_secs(1)).await;
        client.write_all(b"GET").await.expect("write");
        assert_eq!(io.read(&mut [0; 8]).await.expect("still open"), 3);
        // Its head must now complete within HEAD of its first byte.
        let t = Instant::now();
        let err = io.read(&mut [0; 8]).await.expect_err("times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(t.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_ends_after_the_idle_timeout_and_an_upgrade_never_ends() {
        let (_client, server) = tokio::io::duplex(64);
        let phase = Phase::new(HEAD, IDLE);
        let mut io = TimedIo::new(server, phase.clone());
        drop(phase.serving());
        let t = Instant::now();
        let err = io.read(&mut [0; 8]).await.expect_err("times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(t.elapsed(), IDLE);

        let (mut client, server) = tokio::io::duplex(64);
        let phase = Phase::new(HEAD, IDLE);
        let mut io = TimedIo::new(server, phase.clone());
        phase.serving().upgraded();
        tokio::time::sleep(IDLE * 10).await;
        client.write_all(b"frame").await.expect("write");
        assert_eq!(
            io.read(&mut [0; 8]).await.expect("upgraded: no deadline"),
            5
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_waiting_when_the_answer_goes_out_gets_the_idle_deadline() {
        let (_client, server) = tokio::io::duplex(64);
        let phase = Phase::new(HEAD, IDLE);
        let mut io = TimedIo::new(server, phase.clone());
        let serving = phase.serving();
        let t = Instant::now();
        let read = tokio::spawn(async move { io.read(&mut [0; 8]).await });
        // The read now waits with no deadline (a request is being served) ...
        tokio::task::yield_now().await;
        // ... and the answer goes out: the waiting read gets the idle deadline.
        drop(serving);
        let out = tokio::time::timeout(IDLE * 2, read)
            .await
            .expect("the waiting read is woken for its deadline")
            .expect("read task");
        assert_eq!(
            out.expect_err("times out").kind(),
            std::io::ErrorKind::TimedOut
        );
        assert_eq!(t.elapsed(), IDLE);
    }

    /// A request body fed through a channel, one chunk at a time.
    struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChanBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
        }
    }

    const BODY: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_body_trickled_at_one_byte_a_second_fails_at_its_deadline() {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let t = Instant::now();
        let mut body = TimedBody::new(ChanBody(rx), t + BODY);
        let writer = tokio::spawn(async move {
            while tx.send(Bytes::from_static(b"{")).await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut got = 0;
        let err = loop {
            match body.frame().await.expect("the body never ends by itself") {
                Ok(_) => got += 1,
                Err(e) => break e,
            }
        };
        assert!(is_body_timeout(&*err), "{err}");
        assert_eq!(t.elapsed(), BODY);
        // The bytes sent at 0 s .. 29 s, and the one of 30 s if it came before the deadline
        // was noticed.
        assert!((30..=31).contains(&got), "{got} bytes passed on");
        writer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_fails_at_its_deadline_and_a_whole_one_passes() {
        use http_body_util::BodyExt;
        let (_tx, rx) = tokio::sync::mpsc::channel(4);
        let t = Instant::now();
        let body = TimedBody::new(ChanBody(rx), t + BODY);
        let err = body.collect().await.expect_err("times out");
        assert!(is_body_timeout(&*err));
        assert_eq!(t.elapsed(), BODY);

        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let body = TimedBody::new(ChanBody(rx), Instant::now() + BODY);
        tokio::spawn(async move {
            tokio::time::sleep(BODY - Duration::from_secs(1)).await;
            let _ = tx.send(Bytes::from_static(b"{}")).await;
        });
        let whole = body.collect().await.expect("in time").to_bytes();
        assert_eq!(&whole[..], b"{}");
        // A body that arrived whole before the deadline is not refused because its handler
        // started reading it after the deadline.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"{}")).await.expect("buffered");
        drop(tx);
        let body = TimedBody::new(ChanBody(rx), Instant::now() + BODY);
        tokio::time::sleep(BODY * 2).await;
        let whole = body.collect().await.expect("already here").to_bytes();
        assert_eq!(&whole[..], b"{}");
        // Not every error is a timeout.
        assert!(!is_body_timeout(&std::io::Error::other("reset")));
    }
}
