//! Group commit: one writer task for the hot writes of many concurrent callers.
//!
//! Every `POST /v1/messages` hands its validated message, and every phone link its batch of
//! acks and events, to one task through a channel and waits for the answer. The task takes
//! everything queued while the previous commit ran, writes it in one transaction and answers
//! each caller after that commit: one fsync for many messages and many phones, and still
//! nothing is acknowledged (neither a `202` nor a protocol `ack`) before it is on disk.
//! A phone batch that fails is rolled back alone (a savepoint each); the others commit.

use std::sync::Arc;

use simrelay_protocol::Event;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{Applied, CreateOutcome, Db, Millis, NewMessage, PhoneBatch, Result, StoreError};

/// Most jobs per transaction.
const MAX_BATCH: usize = 512;

#[derive(Debug)]
enum Job {
    Create(NewMessage, oneshot::Sender<Result<CreateOutcome>>),
    Apply(PhoneBatch, oneshot::Sender<Result<Applied>>),
}

/// Handle to the group-commit task.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Batch("the writer task has stopped".into())
}

impl Committer {
    /// Starts the writer task; `committed` is notified after each commit that created messages.
    pub fn start(db: Db, committed: Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(db, rx, committed));
        Self { tx }
    }

    /// Stores `m` durably (or finds it stored already) and returns what happened.
    pub async fn create(&self, m: NewMessage) -> Result<CreateOutcome> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Create(m, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Applies a phone's ack and events durably (see `Store::apply_from_phone`).
    pub async fn apply(
        &self,
        phone: String,
        acked: Option<u64>,
        events: Vec<(u64, Event)>,
        now: Millis,
    ) -> Result<Applied> {
        let (tx, rx) = oneshot::channel();
        let batch = PhoneBatch {
            phone,
            acked,
            events,
            now,
        };
        self.tx
            .send(Job::Apply(batch, tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>, committed: Arc<Notify>) {
    let mut buf = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut buf, MAX_BATCH).await > 0 {
        let mut creates = Vec::new();
        let mut create_answers = Vec::new();
        let mut applies = Vec::new();
        let mut apply_answers = Vec::new();
        for job in buf.drain(..) {
            match job {
                Job::Create(m, answer) => {
                    creates.push(m);
                    create_answers.push(answer);
                }
                Job::Apply(b, answer) => {
                    applies.push(b);
                    apply_answers.push(answer);
                }
            }
        }
        let result = db.call(move |s| s.write_batch(&creates, &applies)).await;
        match result {
            Ok((created, applied)) => {
                let any_created = created
                    .iter()
                    .any(|o| matches!(o, CreateOutcome::Created(_)));
                for (answer, outcome) in create_answers.into_iter().zip(created) {
                    let _ = answer.send(Ok(outcome));
                }
                for (answer, outcome) in apply_answers.into_iter().zip(applied) {
                    let _ = answer.send(outcome.map_err(StoreError::Batch));
                }
                if any_created {
                    committed.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch commit failed");
                // Each caller gets the kind it can act on (a full disk, a database away).
                let err = || match &e {
                    StoreError::Full => StoreError::Full,
                    StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
                    other => StoreError::Batch(other.to_string()),
                };
                for answer in create_answers {
                    let _ = answer.send(Err(err()));
                }
                for answer in apply_answers {
                    let _ = answer.send(Err(err()));
                }
            }
        }
    }
}
