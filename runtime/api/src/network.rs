//! `GET /admin/network`: the node's addresses, its peers and how each is
//! reached (directly or through a relay), and the relays it uses or runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dev::Faults;
use crate::ids::Id;

/// How bytes travel on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP with Noise and Yamux.
    Tcp,
    /// QUIC (TLS 1.3 built in).
    Quic,
    /// Anything else (a relayed connection rides on the relay's transport).
    Other,
}

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The peer dialled this node.
    Inbound,
    /// This node dialled the peer.
    Outbound,
}

/// One open connection to a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The peer's address on this connection (a `/p2p-circuit` address
    /// when relayed).
    pub address: String,
    /// The transport under it.
    pub transport: Transport,
    /// Who opened it.
    pub direction: Direction,
    /// Through a relay (circuit relay v2): both ends' bytes cross it.
    pub relayed: bool,
    /// The relay's peer id, when relayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// When it opened (ms since the epoch).
    pub since_ms: u64,
    /// A direct connection made by hole punching (DCUtR) out of a relayed
    /// one.
    pub hole_punched: bool,
}

/// How a peer is reached, all its connections together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// At least one connection goes straight to the peer.
    Direct,
    /// Every connection crosses a relay.
    Relayed,
}

/// How a peer is reached: directly when any connection is direct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerPath {
    /// Direct or relayed.
    pub kind: PathKind,
    /// The relay's peer id, when relayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The transport of the connection used first (the direct one, if any).
    pub transport: Transport,
}

/// One connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// Its peer id.
    pub peer_id: String,
    /// Contexts whose gossip it shares with this node.
    pub contexts: Vec<Id>,
    /// How it is reached.
    pub path: PeerPath,
    /// Every open connection to it.
    pub connections: Vec<Connection>,
    /// The last ping's round trip, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// A slot this node holds on a relay, so peers that cannot dial it reach
/// it through the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelayReservation {
    /// The relay's address, as configured.
    pub relay: String,
    /// The circuit address peers dial to reach this node (`null` until the
    /// relay accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Accepted and live.
    pub accepted: bool,
    /// When the relay last accepted (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// How often the relay renewed it.
    pub renewals: u32,
    /// Why the last attempt failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// This node's relay service (`[network.relay] serve = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelayService {
    /// Reservations held by other peers now.
    pub reservations: u32,
    /// Circuits open now.
    pub circuits: u32,
    /// Bytes one circuit may carry before the relay closes it.
    pub max_circuit_bytes: u64,
    /// Seconds one circuit may last.
    pub max_circuit_secs: u64,
}

/// Meet servers: where members of a context find each other without
/// telling the server the context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeetStatus {
    /// Connected meet servers this node posts to and looks members up at
    /// (peer ids): bootstrap peers, relays and invitation addresses that
    /// serve the meet protocol.
    pub servers: Vec<String>,
    /// Tags (one per context gossiped in) posted at the last round.
    pub posted_tags: u32,
    /// Members found at meet servers and dialed, since start.
    pub found: u64,
    /// Records this node keeps, when it serves as a meet server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_records: Option<u32>,
}

/// `GET /admin/network`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Where it listens (with `/p2p/<peer id>`: give these to other nodes).
    pub listen_addrs: Vec<String>,
    /// Where peers elsewhere reach it: configured public addresses and
    /// relay circuits (with `/p2p/<peer id>`).
    pub external_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<Peer>,
    /// Peers banned for sending garbage, until their ban expires.
    pub banned: Vec<String>,
    /// The relays this node reserves a slot on (`[network] relays`).
    pub relays: Vec<RelayReservation>,
    /// This node's relay service, when it serves as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_service: Option<RelayService>,
    /// Meet servers in use, and this node's own meet service.
    #[serde(default)]
    pub meet: MeetStatus,
    /// The injected faults: only on a node started with `merod run --dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}
