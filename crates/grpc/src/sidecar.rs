//! A party's side of the node self-test, served over gRPC (`SelfTest`),
//! and the transport a recovering server reaches those sidecars with.
//!
//! The sidecar holds its party's save data on a thread of its own, which
//! answers the encoded requests one at a time with a
//! [`SelfTestResponder`]: `Xi` and the nonces stay on that thread, and are
//! wiped with it when the sidecar is dropped. The answers are public
//! (nonce commitments, signature shares masked by one-time nonces, under
//! the self-test's own domain tag).

use core::fmt;
use std::collections::BTreeMap;
use std::sync::mpsc;

use shardkeep_keydata::{
    LocalPartySaveData, MAX_SELF_TEST_MESSAGE_LEN, PeerTransport, SelfTestResponder, TransportError,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::error::Error;
use crate::proto;
use crate::proto::backup_service_client::BackupServiceClient;

type Answer = Result<Vec<u8>, shardkeep_keydata::Error>;

/// One party's self-test responder, on its own thread.
pub struct SelfTestSidecar {
    party_id: Vec<u8>,
    requests: mpsc::Sender<(Vec<u8>, oneshot::Sender<Answer>)>,
}

impl fmt::Debug for SelfTestSidecar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfTestSidecar")
            .field("party_id", &hex::encode(&self.party_id))
            .finish_non_exhaustive()
    }
}

impl SelfTestSidecar {
    /// Starts the responder thread over `data` (moved there; dropped, and
    /// wiped, when the sidecar is).
    ///
    /// # Errors
    /// [`Error::SidecarThread`] when the thread cannot be started.
    pub fn spawn(data: LocalPartySaveData) -> Result<Self, Error> {
        let party_id = data.share_id().to_vec();
        let (requests, incoming) = mpsc::channel::<(Vec<u8>, oneshot::Sender<Answer>)>();
        std::thread::Builder::new()
            .name("shardkeep-self-test".to_owned())
            .spawn(move || {
                let mut responder = SelfTestResponder::new(&data);
                // Ends when the sidecar (the sender) is dropped.
                for (request, reply) in incoming {
                    // The requester may have gone (a cancelled call): its
                    // answer is dropped.
                    let _ = reply.send(responder.answer(&request));
                }
            })
            .map_err(Error::SidecarThread)?;
        Ok(Self { party_id, requests })
    }

    /// The `ShareID` of the party this sidecar answers for.
    #[must_use]
    pub fn party_id(&self) -> &[u8] {
        &self.party_id
    }

    /// The answer to one encoded request for `party_id`.
    pub(crate) async fn answer(&self, party_id: &[u8], request: Vec<u8>) -> Result<Vec<u8>, Error> {
        // ShareIDs are public: a plain comparison.
        if party_id != self.party_id.as_slice() {
            return Err(Error::InvalidArgument {
                field: "party_id",
                why: "this sidecar answers for another party",
            });
        }
        if request.len() > MAX_SELF_TEST_MESSAGE_LEN {
            return Err(Error::InvalidArgument {
                field: "request",
                why: "longer than 64 KiB",
            });
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((request, reply))
            .map_err(|_| Error::TaskFailed)?;
        answer
            .await
            .map_err(|_| Error::TaskFailed)?
            .map_err(Error::SelfTest)
    }
}

/// Reaches the other parties' sidecars over gRPC: a [`PeerTransport`] for
/// [`RemotePeers`](shardkeep_keydata::RemotePeers), by `ShareID`.
///
/// Its exchanges block: it is meant for the recovery's self-test, which
/// runs on a blocking thread. Each request is sent by a task on `runtime`
/// and awaited from the calling thread.
pub struct GrpcPeerTransport {
    runtime: tokio::runtime::Handle,
    sidecars: BTreeMap<Vec<u8>, BackupServiceClient<Channel>>,
}

impl fmt::Debug for GrpcPeerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcPeerTransport")
            .field(
                "parties",
                &self.sidecars.keys().map(hex::encode).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl GrpcPeerTransport {
    /// A transport sending each party's requests to its sidecar in
    /// `sidecars` (by `ShareID`), from tasks on `runtime`.
    #[must_use]
    pub fn new(
        runtime: tokio::runtime::Handle,
        sidecars: impl IntoIterator<Item = (Vec<u8>, BackupServiceClient<Channel>)>,
    ) -> Self {
        Self {
            runtime,
            sidecars: sidecars.into_iter().collect(),
        }
    }
}

impl PeerTransport for GrpcPeerTransport {
    fn exchange(&mut self, party_id: &[u8], request: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut client = self
            .sidecars
            .get(party_id)
            .cloned()
            .ok_or("no sidecar for that party")?;
        let message = proto::SelfTestRequest {
            party_id: party_id.to_vec(),
            request: request.to_vec(),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = reply.send(client.self_test(message).await);
        });
        let response = answer
            .recv()
            .map_err(|_| "the sidecar call was dropped")??;
        Ok(response.into_inner().answer)
    }
}
