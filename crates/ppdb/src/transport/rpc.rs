//! Request/response over the transport: the caller's table of calls awaiting a response, and
//! the [`Responder`] the receiving node answers with.
//!
//! A response larger than `response_chunk_bytes` does not travel as one frame: the responder
//! queues it whole ([`Answer::Chunked`]), the connection's reply writer cuts it into
//! `ResponseChunk` frames, sending one response's chunks after another with the connection's
//! other answers (pongs, small responses) between them, and the caller's side reassembles it
//! ([`ResponseAssembler`]), bounded by `response_bytes_max`, before completing the call. So a
//! response up to that bound crosses whatever the frame limit; a larger one is never sent, and
//! the caller is told at once that its request was dropped.

use super::error::TransportError;
use super::frame::{encode_response_chunk, Frame, ResponseStatus};
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

/// What waits to go back on an inbound connection.
#[derive(Debug)]
pub(super) enum Answer {
    /// A whole frame: a pong, or a response that fits one chunk.
    Frame(Vec<u8>),
    /// A response sent in chunks.
    Chunked(ChunkedResponse),
}

/// A response being sent in chunks: yields its chunk frames one at a time.
#[derive(Debug)]
pub(super) struct ChunkedResponse {
    id: u64,
    payload: Vec<u8>,
    offset: usize,
}

impl ChunkedResponse {
    /// The next chunk frame (at most `chunk_bytes` of the payload), or `None` when all were
    /// produced.
    pub fn next_frame(&mut self, chunk_bytes: usize) -> Option<Vec<u8>> {
        let total = self.payload.len();
        if self.is_done() {
            return None;
        }
        let end = total.min(self.offset.saturating_add(chunk_bytes.max(1)));
        let frame =
            encode_response_chunk(self.id, self.offset as u64, total as u64, &self.payload[self.offset..end]);
        self.offset = end;
        Some(frame)
    }

    /// Whether every chunk was produced.
    pub fn is_done(&self) -> bool {
        self.offset >= self.payload.len()
    }
}

/// The size limits of responses on one transport.
#[derive(Debug, Clone, Copy)]
pub(super) struct ResponseLimits {
    /// Larger responses travel in chunks of this size.
    pub chunk_bytes: usize,
    /// Largest response sent or reassembled.
    pub bytes_max: usize,
}

/// The way to answer one incoming request. Answer with [`Responder::respond`]; dropping it
/// unanswered tells the caller at once that the request was dropped (instead of letting it
/// wait for its timeout).
#[derive(Debug)]
pub struct Responder {
    id: u64,
    from: NodeId,
    reply: mpsc::Sender<Answer>,
    limits: ResponseLimits,
    answered: bool,
}

impl Responder {
    pub(super) fn new(
        id: u64,
        from: NodeId,
        reply: mpsc::Sender<Answer>,
        limits: ResponseLimits,
    ) -> Responder {
        Responder { id, from, reply, limits, answered: false }
    }

    /// The node that sent the request.
    pub fn from(&self) -> NodeId {
        self.from
    }

    /// Sends the answer, in chunks when it is larger than `response_chunk_bytes`. Fails if it
    /// exceeds `response_bytes_max` (logged; the caller is then told the request was dropped)
    /// or the connection it must travel on is gone or congested (the caller then times out).
    pub fn respond(mut self, payload: Vec<u8>) -> Result<(), TransportError> {
        if payload.len() > self.limits.bytes_max {
            tracing::error!(
                peer = %self.from, bytes = payload.len(), limit = self.limits.bytes_max,
                "response exceeds response_bytes_max; the caller is told its request was dropped"
            );
            return Err(TransportError::TooLarge { bytes: payload.len(), limit: self.limits.bytes_max });
        }
        let answer = if payload.len() <= self.limits.chunk_bytes {
            Answer::Frame(Frame::Response { id: self.id, status: ResponseStatus::Ok, payload }.encode())
        } else {
            Answer::Chunked(ChunkedResponse { id: self.id, payload, offset: 0 })
        };
        self.answered = true;
        self.reply.try_send(answer).map_err(|_| TransportError::Network {
            peer: self.from,
            reason: "connection closed or congested before the response could be sent".into(),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            let frame = Frame::Response { id: self.id, status: ResponseStatus::Dropped, payload: Vec::new() };
            let _ = self.reply.try_send(Answer::Frame(frame.encode()));
        }
    }
}

/// The response being reassembled from chunks on one outbound connection. The peer sends one
/// chunked response after another, each in order, so there is at most one at a time; anything
/// else is a protocol violation, and closes the connection.
#[derive(Debug)]
pub(super) struct ResponseAssembler {
    bytes_max: usize,
    current: Option<Assembly>,
}

#[derive(Debug)]
struct Assembly {
    id: u64,
    total: usize,
    data: Vec<u8>,
}

impl ResponseAssembler {
    /// Reassembles responses of at most `bytes_max` bytes.
    pub fn new(bytes_max: usize) -> ResponseAssembler {
        ResponseAssembler { bytes_max, current: None }
    }

    /// Takes the chunk `data` at `offset` of response `id`'s `total` bytes; the whole payload
    /// once this chunk completes it.
    pub fn accept(
        &mut self,
        id: u64,
        offset: u64,
        total: u64,
        data: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, String> {
        let total =
            usize::try_from(total).ok().filter(|&total| total <= self.bytes_max).ok_or_else(|| {
                format!("response {id} of {total} bytes exceeds the limit of {} bytes", self.bytes_max)
            })?;
        let mut assembly = match self.current.take() {
            Some(a) if a.id == id && a.total == total && a.data.len() as u64 == offset => a,
            Some(a) => {
                return Err(format!(
                    "chunk at {offset} of response {id} while response {} is at {} of {}",
                    a.id,
                    a.data.len(),
                    a.total
                ))
            }
            // Reserved once: bounded by bytes_max, from a peer that passed the handshake.
            None if offset == 0 => Assembly { id, total, data: Vec::with_capacity(total) },
            None => return Err(format!("response {id} starts with a chunk at {offset}, not 0")),
        };
        if data.is_empty() || assembly.data.len() + data.len() > total {
            return Err(format!(
                "chunk of {} bytes at {offset} of response {id} of {total} bytes",
                data.len()
            ));
        }
        assembly.data.extend_from_slice(&data);
        if assembly.data.len() == total {
            return Ok(Some(assembly.data));
        }
        self.current = Some(assembly);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::decode_frame;

    /// The frames a chunked response of `payload` is sent as, decoded.
    fn chunks(id: u64, payload: &[u8], chunk_bytes: usize) -> Vec<Frame> {
        let mut response = ChunkedResponse { id, payload: payload.to_vec(), offset: 0 };
        let mut frames = Vec::new();
        while let Some(bytes) = response.next_frame(chunk_bytes) {
            let decoded = decode_frame(&bytes, usize::MAX).unwrap_or_else(|e| panic!("{e}"));
            frames.push(decoded.map(|(frame, _)| frame).unwrap_or_else(|| panic!("a whole frame")));
        }
        assert!(response.is_done());
        frames
    }

    fn accept(assembler: &mut ResponseAssembler, frame: Frame) -> Result<Option<Vec<u8>>, String> {
        let Frame::ResponseChunk { id, offset, total, data } = frame else {
            panic!("not a chunk: {frame:?}")
        };
        assembler.accept(id, offset, total, data)
    }

    #[test]
    fn a_response_cut_into_chunks_is_reassembled_whole_one_after_another() {
        let first: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let second = vec![7u8; 2500];
        let mut assembler = ResponseAssembler::new(10_000);
        for (id, payload) in [(1, &first), (2, &second)] {
            let frames = chunks(id, payload, 1000);
            assert_eq!(frames.len(), payload.len().div_ceil(1000));
            let last = frames.len() - 1;
            for (i, frame) in frames.into_iter().enumerate() {
                let done = accept(&mut assembler, frame).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(done.as_ref(), (i == last).then_some(payload), "chunk {i} of response {id}");
            }
        }
    }

    #[test]
    fn chunks_out_of_order_interleaved_or_over_the_limit_are_refused() {
        let payload = vec![1u8; 3000];
        let frames = chunks(1, &payload, 1000);
        let mut assembler = ResponseAssembler::new(3000);
        assert!(accept(&mut assembler, frames[1].clone()).is_err(), "a response must start at 0");
        let mut assembler = ResponseAssembler::new(3000);
        assert_eq!(accept(&mut assembler, frames[0].clone()), Ok(None));
        assert!(accept(&mut assembler, frames[2].clone()).is_err(), "a gap");
        let mut assembler = ResponseAssembler::new(3000);
        assert_eq!(accept(&mut assembler, frames[0].clone()), Ok(None));
        let other = chunks(2, &payload, 1000).remove(0);
        assert!(accept(&mut assembler, other).is_err(), "another response before this one ends");
        let mut small = ResponseAssembler::new(2999);
        assert!(accept(&mut small, frames[0].clone()).is_err(), "larger than the limit");
        let overlong = Frame::ResponseChunk { id: 3, offset: 0, total: 10, data: vec![0; 11] };
        assert!(accept(&mut ResponseAssembler::new(100), overlong).is_err(), "more than its total");
    }

    #[tokio::test]
    async fn a_responder_sends_large_answers_in_chunks_and_refuses_what_exceeds_the_limit() {
        let (tx, mut rx) = mpsc::channel(4);
        let limits = ResponseLimits { chunk_bytes: 100, bytes_max: 1000 };
        Responder::new(1, NodeId(2), tx.clone(), limits)
            .respond(vec![0; 100])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(rx.recv().await, Some(Answer::Frame(_))), "one chunk's worth is one frame");
        Responder::new(2, NodeId(2), tx.clone(), limits)
            .respond(vec![0; 101])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(rx.recv().await, Some(Answer::Chunked(_))));
        let refused = Responder::new(3, NodeId(2), tx, limits).respond(vec![0; 1001]);
        assert!(matches!(refused, Err(TransportError::TooLarge { bytes: 1001, limit: 1000 })));
        // The refused request is answered as dropped, so its caller does not wait.
        let Some(Answer::Frame(bytes)) = rx.recv().await else { panic!("no answer for the refused request") };
        let decoded = decode_frame(&bytes, usize::MAX).ok().flatten().map(|(frame, _)| frame);
        assert_eq!(
            decoded,
            Some(Frame::Response { id: 3, status: ResponseStatus::Dropped, payload: Vec::new() })
        );
    }
}
