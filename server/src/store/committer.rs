//! Group commit for message creation.
//!
//! Every `POST /v1/messages` hands its validated message to one writer task through a channel
//! and waits for the answer. The task takes everything queued while the previous commit ran,
//! stores it in one transaction and answers each request after that commit: one fsync for
//! many messages, and still nothing is acknowledged before it is on disk.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};

use super::{CreateOutcome, Db, NewMessage, Result, StoreError};

/// Most messages per transaction.
const MAX_BATCH: usize = 512;

type Job = (NewMessage, oneshot::Sender<Result<CreateOutcome>>);

/// Handle to the group-commit task.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
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
            .send((m, tx))
            .await
            .map_err(|_| StoreError::Batch("the writer task has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Batch("the writer task has stopped".into()))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>, committed: Arc<Notify>) {
    let mut buf = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut buf, MAX_BATCH).await > 0 {
        let (messages, answers): (Vec<NewMessage>, Vec<_>) = buf.drain(..).unzip();
        let result = db.call(move |s| s.create_messages(&messages)).await;
        match result {
            Ok(outcomes) => {
                let created = outcomes
                    .iter()
                    .any(|o| matches!(o, CreateOutcome::Created(_)));
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
                if created {
                    committed.notify_one();
                }
            }
            Err(e) => {
                let full = matches!(e, StoreError::Full);
                tracing::error!(error = %e, "message batch commit failed");
                for answer in answers {
                    let err = if full {
                        StoreError::Full
                    } else {
                        StoreError::Batch(e.to_string())
                    };
                    let _ = answer.send(Err(err));
                }
            }
        }
    }
}
