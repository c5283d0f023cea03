//! Publications between nodes: the peer message and [`ClusterPubSub`], which delivers a
//! publication here and sends it to every other member.
//!
//! A publication travels as a peer request (tag [`PUBSUB_MESSAGE_TAG`]) whose answer, an
//! empty payload, nobody waits for: the sender drops its call at once, so a slow or dead
//! member never holds a publisher up, and a member whose link is down is skipped (at most
//! once, as Redis). The receiver delivers it to its subscribers before it looks at the next
//! request from that member, so each member delivers one sender's publications in the order
//! they were sent.
//!
//! Request: tag u8, space u8 (1 channels, 2 shard channels), channel and message as
//! length-prefixed bytes, each at most [`PUBLICATION_BYTES_MAX`]. A publication larger than
//! the transport's frame is delivered on its own node only (the transport refuses it, and the
//! node says so in its log).

use super::registry::{PubSubRegistry, Space};
use crate::codec::{DecodeError, Decoder, Encoder};
use crate::limits;
use crate::transport::{Transport, TransportError};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use ppdb_raft::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// The first byte of a publication sent to a peer (beside the forwarded shard operations'
/// and the membership requests' tags).
pub const PUBSUB_MESSAGE_TAG: u8 = 4;
/// Largest channel or message carried between nodes: a whole client request's worth.
pub const PUBLICATION_BYTES_MAX: usize = limits::REQUEST_BYTES_MAX;
/// How long the transport keeps a publication's call open; nobody waits for its answer.
const PUBLICATION_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A message published on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Channels or shard channels.
    pub space: Space,
    /// The channel.
    pub channel: Bytes,
    /// The message.
    pub message: Bytes,
}

impl Publication {
    /// The peer request carrying it.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u8(PUBSUB_MESSAGE_TAG);
        e.u8(match self.space {
            Space::Global => 1,
            Space::Shard => 2,
        });
        e.bytes(&self.channel);
        e.bytes(&self.message);
        e.finish()
    }

    /// Reads a peer request; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Publication, DecodeError> {
        let mut d = Decoder::new(bytes, "publication");
        if d.u8()? != PUBSUB_MESSAGE_TAG {
            return Err(d.error("not a publication"));
        }
        let space = match d.u8()? {
            1 => Space::Global,
            2 => Space::Shard,
            _ => return Err(d.error("unknown channel space")),
        };
        let channel = Bytes::copy_from_slice(d.bytes(PUBLICATION_BYTES_MAX)?);
        let message = Bytes::copy_from_slice(d.bytes(PUBLICATION_BYTES_MAX)?);
        d.finish()?;
        Ok(Publication { space, channel, message })
    }
}

/// Pub/sub across the cluster: this node's registry and the links to the other members.
#[derive(Debug, Clone)]
pub struct ClusterPubSub {
    /// This node's subscribers.
    pub registry: Arc<PubSubRegistry>,
    transport: Transport,
}

impl ClusterPubSub {
    /// Publishes through `transport` to the members, and delivers to `registry` here.
    pub fn new(registry: Arc<PubSubRegistry>, transport: Transport) -> ClusterPubSub {
        ClusterPubSub { registry, transport }
    }

    /// PUBLISH and SPUBLISH: sends `publication` to every other member without waiting, then
    /// delivers it here; the deliveries made here (Redis Cluster's reply counts the receivers
    /// of the node that served the command).
    pub fn publish(&self, publication: &Publication) -> usize {
        let request = publication.encode();
        for peer in self.transport.peers().into_keys() {
            // The request is queued when the call is made; polled once, the call says at once
            // whether it was refused, and dropping it forgets the answer.
            match self.transport.call(peer, request.clone(), PUBLICATION_CALL_TIMEOUT).now_or_never() {
                Some(Err(error @ TransportError::TooLarge { .. })) => {
                    tracing::warn!(%peer, %error, "publication not sent: larger than a peer frame");
                }
                Some(Err(error)) => tracing::trace!(%peer, %error, "publication not sent"),
                Some(Ok(_)) | None => {}
            }
        }
        self.registry.publish(publication.space, &publication.channel, &publication.message)
    }

    /// Delivers a publication member `from` sent, before the next request is read.
    pub fn serve_peer(&self, from: NodeId, request: &[u8]) -> BoxFuture<'static, Vec<u8>> {
        match Publication::decode(request) {
            Ok(publication) => {
                self.registry.publish(publication.space, &publication.channel, &publication.message);
            }
            Err(error) => tracing::warn!(peer = %from, %error, "undecodable publication dropped"),
        }
        Box::pin(std::future::ready(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_publication_round_trips_and_a_damaged_one_is_refused() {
        let publication = Publication {
            space: Space::Shard,
            channel: Bytes::from_static(b"orders"),
            message: Bytes::from_static(b"\x00\r\nbinary"),
        };
        let encoded = publication.encode();
        assert_eq!(Publication::decode(&encoded), Ok(publication));
        for end in 0..encoded.len() {
            assert!(Publication::decode(&encoded[..end]).is_err(), "cut at {end}");
        }
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(Publication::decode(&trailing).is_err());
        let mut space = encoded;
        space[1] = 3;
        assert!(Publication::decode(&space).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Publication::decode(&bytes);
            let mut tagged = vec![PUBSUB_MESSAGE_TAG];
            tagged.extend_from_slice(&bytes);
            let _ = Publication::decode(&tagged);
        }
    }
}
