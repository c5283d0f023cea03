//! Request/response over the transport: the caller's table of calls awaiting a response, and
//! the [`Responder`] the receiving node answers with.

use super::error::TransportError;
use super::frame::{Frame, ResponseStatus};
use ppdb_raft::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};

/// A call's outcome: the response payload, or why none came.
pub(super) type Reply = Result<Vec<u8>, TransportError>;

/// Calls awaiting a response, by request id.
#[derive(Debug, Default)]
pub(super) struct PendingCalls {
    calls: Mutex<BTreeMap<u64, (NodeId, oneshot::Sender<Reply>)>>,
}

/// Removes its call from the table when the caller stops waiting (answered, timed out, or
/// the caller's future was dropped), so the table cannot leak.
pub(super) struct PendingGuard {
    calls: Arc<PendingCalls>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.id);
    }
}

impl PendingCalls {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, (NodeId, oneshot::Sender<Reply>)>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a call to `peer`; the receiver yields its outcome.
    pub fn register(self: &Arc<Self>, id: u64, peer: NodeId) -> (PendingGuard, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, (peer, tx));
        (PendingGuard { calls: Arc::clone(self), id }, rx)
    }

    /// Delivers a response that arrived from `from`. Responses to unknown ids (the caller gave
    /// up) or from the wrong peer are ignored.
    pub fn complete(&self, id: u64, from: NodeId, reply: Reply) {
        let mut calls = self.lock();
        if calls.get(&id).is_some_and(|(peer, _)| *peer == from) {
            if let Some((_, tx)) = calls.remove(&id) {
                let _ = tx.send(reply);
            }
        } else {
            tracing::debug!(id, peer = %from, "response to no pending call ignored");
        }
    }

    /// Fails every call to `peer`: its connection was lost, so no response will come on it.
    pub fn fail_peer(&self, peer: NodeId, reason: &str) {
        let mut calls = self.lock();
        let ids: Vec<u64> = calls.iter().filter(|(_, (p, _))| *p == peer).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some((_, tx)) = calls.remove(&id) {
                let _ = tx.send(Err(TransportError::Network { peer, reason: reason.to_string() }));
            }
        }
    }

    /// Fails every call.
    pub fn fail_all(&self, error: impl Fn(NodeId) -> TransportError) {
        for (_, (peer, tx)) in std::mem::take(&mut *self.lock()) {
            let _ = tx.send(Err(error(peer)));
        }
    }
}

/// The way to answer one incoming request. Answer with [`Responder::respond`]; dropping it
/// unanswered tells the caller at once that the request was dropped (instead of letting it
/// wait for its timeout).
#[derive(Debug)]
pub struct Responder {
    id: u64,
    from: NodeId,
    reply: mpsc::Sender<Vec<u8>>,
    frame_bytes_max: usize,
    answered: bool,
}

impl Responder {
    pub(super) fn new(
        id: u64,
        from: NodeId,
        reply: mpsc::Sender<Vec<u8>>,
        frame_bytes_max: usize,
    ) -> Responder {
        Responder { id, from, reply, frame_bytes_max, answered: false }
    }

    /// The node that sent the request.
    pub fn from(&self) -> NodeId {
        self.from
    }

    /// Sends the answer. Fails if it exceeds the frame limit (the caller is then told the
    /// request was dropped) or the connection it must travel on is gone or congested (the
    /// caller then times out).
    pub fn respond(mut self, payload: Vec<u8>) -> Result<(), TransportError> {
        let frame = Frame::Response { id: self.id, status: ResponseStatus::Ok, payload }.encode();
        if frame.len() > self.frame_bytes_max {
            return Err(TransportError::TooLarge { bytes: frame.len(), limit: self.frame_bytes_max });
        }
        self.answered = true;
        self.reply.try_send(frame).map_err(|_| TransportError::Network {
            peer: self.from,
            reason: "connection closed or congested before the response could be sent".into(),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            let frame = Frame::Response { id: self.id, status: ResponseStatus::Dropped, payload: Vec::new() };
            let _ = self.reply.try_send(frame.encode());
        }
    }
}
