//! One request from a node that is not a member yet: a joining node asks a member to add it.
//!
//! The guest dials the member's peer address, introduces itself with a hello naming
//! [`GUEST_TARGET`] (it does not know the member's id), sends one request, reads the answer and
//! closes. The member accepts guests of its own cluster only, and only their requests
//! (`inbound.rs` closes a guest connection that sends anything else).

use super::error::TransportError;
use super::frame::{read_frame, Frame, ResponseStatus};
use super::handshake::{self, Hello, Incarnation, GUEST_TARGET, PROTOCOL_VERSION};
use super::tls::{MaybeTls, TlsContext};
use super::FRAME_BYTES_MAX_DEFAULT;
use ppdb_raft::NodeId;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends `payload` as guest `from` (in its `incarnation`) of `cluster_id` to the node listening on `addr` and returns
/// its answer, over TLS when `tls` is given. The whole exchange gives up after `timeout`. Errors name node 0 as the peer
/// (its id is unknown to the guest); a member of another cluster answers with
/// [`TransportError::Refused`].
pub async fn guest_call(
    addr: SocketAddr,
    cluster_id: &str,
    from: NodeId,
    incarnation: Incarnation,
    payload: Vec<u8>,
    timeout: Duration,
    tls: Option<&TlsContext>,
) -> Result<Vec<u8>, TransportError> {
    let peer = GUEST_TARGET;
    let net = |reason: String| TransportError::Network { peer, reason };
    let exchange = async {
        let tcp =
            TcpStream::connect(addr).await.map_err(|e| net(format!("cannot connect to {addr}: {e}")))?;
        let mut stream = match tls {
            None => MaybeTls::Plain(tcp),
            Some(tls) => tls
                .dial_peer(tcp, addr.ip())
                .await
                .map_err(|e| net(format!("TLS handshake with {addr}: {e}")))?,
        };
        let cluster_id = cluster_id.to_string();
        let hello = Hello { version: PROTOCOL_VERSION, cluster_id, from, to: peer, incarnation };
        handshake::dial(&mut stream, hello, None, timeout, FRAME_BYTES_MAX_DEFAULT).await?;
        let request = Frame::Request { id: 1, payload }.encode();
        stream.write_all(&request).await.map_err(|e| net(format!("request write: {e}")))?;
        stream.flush().await.map_err(|e| net(format!("request write: {e}")))?;
        loop {
            let (frame, _) = read_frame(&mut stream, FRAME_BYTES_MAX_DEFAULT)
                .await
                .map_err(|e| net(format!("response read: {e}")))?;
            match frame {
                Frame::Response { id: 1, status: ResponseStatus::Ok, payload } => return Ok(payload),
                Frame::Response { id: 1, status: ResponseStatus::Dropped, .. } => {
                    return Err(net("the member dropped the request unanswered".into()))
                }
                Frame::Pong { .. } => {}
                other => return Err(net(format!("unexpected {:?} frame in answer", other.kind()))),
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(TransportError::Timeout { peer, after: timeout }))
}
