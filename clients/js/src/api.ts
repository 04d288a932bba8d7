// Generated from the node API's Rust types (runtime/api, crate mero-api).
// Do not edit: change the types, then run
//   MERO_BLESS=1 cargo test --release --workspace --test generated

/** The app's ABI: state, methods, events, errors (see mero-abi). */
export interface AppAbi {
  methods: Array<Record<string, unknown>>;
}

/**
 * The `data` of a -32003 error: the error an app method returned on
 * purpose.
 */
export interface AppErrorData {
  /** The variant's code; 0 for an untyped error. */
  code: number;
  /**
   * The variant's fields (an object for a struct variant, the value for
   * a one-field tuple variant, an array for a longer one, `null` for a
   * unit variant), or an untyped error's payload.
   */
  data: unknown;
  /** The `#[app::error]` variant's name, or `app` for an untyped error. */
  kind: string;
}

/** An installed app (`GET /admin/apps`, `POST /admin/apps`). */
export interface AppInfo {
  /** Content hash of the WASM module. */
  hash: Id;
  /** The methods a client may name (not `init`). */
  methods: Array<string>;
  /** The state struct's name. */
  name: string;
  /** WASM size in bytes. */
  size: number;
}

/** `POST /contexts/{id}/blobs`. */
export interface BlobUploaded {
  /** 1 MiB chunks. */
  chunks: number;
  /** `blob:` and 64 hex digits: the hash of the blob's manifest. */
  id: string;
  /** Size in bytes. */
  size: number;
}

/** What kind of failure a call ended in. Every kind leaves no trace in state. */
export type CallErrorKind = "app" | "invalid_args" | "unknown_method" | "panic" | "trap" | "timeout" | "out_of_memory" | "mutability" | "limit" | "host";

/**
 * The `data` of a failed call's error that is not the app's own (and of
 * a 422 REST error).
 */
export interface CallFailure {
  /** More, when there is any. */
  data?: unknown;
  /** The failure class. */
  kind: CallErrorKind;
  /** What happened. */
  message: string;
}

/** The params of `execute` and `query`. */
export interface CallParams {
  /** Arguments keyed by parameter name (absent: none). */
  args?: Record<string, unknown> | null;
  /** The context. */
  context: Id;
  /** The app method. */
  method: string;
}

/** A successful call's result. */
export interface CallResult {
  /** The delta the call produced, if it changed state. */
  delta?: Id;
  /** The method's return value. */
  output: unknown;
}

/** One open connection to a peer. */
export interface Connection {
  /**
   * The peer's address on this connection (a `/p2p-circuit` address
   * when relayed).
   */
  address: string;
  /** Who opened it. */
  direction: Direction;
  /**
   * A direct connection made by hole punching (DCUtR) out of a relayed
   * one.
   */
  holePunched: boolean;
  /** The relay's peer id, when relayed. */
  relay?: string;
  /** Through a relay (circuit relay v2): both ends' bytes cross it. */
  relayed: boolean;
  /** When it opened (ms since the epoch). */
  sinceMs: number;
  /** The transport under it. */
  transport: Transport;
}

/**
 * A context on this node (`/admin/contexts`, and what joins, upgrades
 * and membership changes answer).
 */
export interface ContextInfo {
  /** The app it runs here. */
  app: Id;
  /** Deltas applied in the context, from every member. */
  deltas: number;
  /** Current DAG heads. */
  heads: Array<Id>;
  /** The context id. */
  id: Id;
  /** Whether this node is still catching up before its join. */
  joining: boolean;
  /** This node's member key in it. */
  member: Id;
  /** Number of active members. */
  members: number;
  /**
   * The app the context upgraded to, while this node lacks it and keeps
   * serving `app`.
   */
  pendingApp?: Id;
  /**
   * Why the context is quarantined, if it is: its replica failed; its
   * calls and deltas are refused until the node restarts.
   */
  quarantined?: string;
  /** This member's delta count. */
  seq: number;
}

/** `POST /admin/contexts`. */
export interface CreateContextRequest {
  /** The installed app's hash. */
  app: Id;
  /** Arguments of the app's `init`, keyed by parameter name. */
  args?: Record<string, unknown> | null;
}

/** `POST /admin/contexts/{id}/invitations` (the body may be empty). */
export interface CreateInvitationRequest {
  /** The joiner's role (default writer). */
  role?: Role | null;
  /** How many joins it admits (default 1). */
  uses?: number | null;
  /** Validity in seconds (default: one day). */
  validForSecs?: number | null;
}

/**
 * One delta of a context's log without its payload
 * (`GET /admin/contexts/{id}/dag`).
 */
export interface DagEntry {
  /** The app version its author ran. */
  app: Id;
  /** The author's member key. */
  author: Id;
  /** The delta id. */
  id: Id;
  /**
   * What it does: `call`, `join`, `invite`, `revoke`, `remove`,
   * `set_role`, `upgrade`, `rotate`, `leave` or `evidence`.
   */
  kind: string;
  /** The deltas it builds on. */
  parents: Array<Id>;
  /** Its position in this node's log (apply order, parents first). */
  pos: number;
  /** The author's sequence number (1, 2, 3, ...). */
  seq: number;
}

/** A page of a context's DAG (`GET /admin/contexts/{id}/dag`). */
export interface DagPage {
  /** The entries, by position. */
  entries: Array<DagEntry>;
  /** The log's length on this node. */
  len: number;
  /** The position to ask for next (`?from=`). */
  next: number;
}

/** `DELETE /admin/contexts/{id}`. */
export interface Deleted {
  /** The context whose replica was deleted. */
  deleted: Id;
}

/** A page of a context's log (`GET /admin/contexts/{id}/deltas`). */
export interface DeltaPage {
  /** Hex-encoded signed deltas. */
  deltas: Array<string>;
  /** The position to ask for next (`?from=`). */
  next: number;
}

/** Who opened a connection. */
export type Direction = "inbound" | "outbound";

/** The body of every REST error: `{"error": {"code", "message", "data"?}}`. */
export interface ErrorBody {
  /** What went wrong. */
  error: ErrorDetail;
}

/**
 * A REST error, or the last `error` message of an SSE stream whose token
 * ended.
 */
export interface ErrorDetail {
  /**
   * Stable machine-readable code (`unauthorized`, `token_expired`,
   * `forbidden`, `not_found`, ...; see docs/api.md).
   */
  code: string;
  /** For a failed call (422): the `CallFailure`. */
  data?: unknown;
  /** What happened and what to do. */
  message: string;
}

/**
 * An app event from a delta applied on this node (`method: "event"` on the
 * WebSocket, `event: event` over SSE).
 */
export interface EventItem {
  /** The member whose call emitted it. */
  author: Id;
  /** The context. */
  context: Id;
  /** The variant's fields, as the app encoded them. */
  data: unknown;
  /** The delta that carried it. */
  delta: Id;
  /** Position in the context's stream (1, 2, ...; shared with state items). */
  id: number;
  /** The event variant's name. */
  kind: string;
  /** Whether the call ran on this node. */
  local: boolean;
  /** `"event"`. */
  type: EventTag;
}

/** The `type` of an event item: always `"event"`. */
export type EventTag = "event";

/** This node's faults (`GET`, `PUT` and `DELETE /admin/dev/faults`). */
export interface Faults {
  /** Peers refused both ways. */
  blocked: Array<string>;
  /** When the faults last changed (ms since the epoch; 0: never). */
  changedAtMs: number;
  /**
   * Messages dropped since start: lost by a link, or over the held
   * bounds (10,000 messages, 64 MiB).
   */
  dropped: number;
  /** Messages held for a delay now. */
  held: number;
  /** Their bytes. */
  heldBytes: number;
  /** Cut off from every peer. */
  isolated: boolean;
  /** Delay and loss per peer. */
  links: Array<Link>;
}

/**
 * Items asked for were pruned by retention: the replay starts later
 * (`method: "gap"` on the WebSocket, `event: gap` over SSE).
 */
export interface Gap {
  /** The context (absent over SSE, which streams one context). */
  context?: Id;
  /** The first id that follows. */
  replayFrom: number;
  /** The first id asked for. */
  requested: number;
}

/** `GET /health`. */
export interface Health {
  /** Always `ok`. */
  status: string;
  /** The node's version. */
  version: string;
}

/** A 32-byte id in base58: context id, app hash, member key or delta id. */
export type Id = string;

/** An invitation and its token. */
export interface Invitation {
  /** Addresses of the inviting node. */
  addrs: Array<string>;
  /** The context. */
  context: Id;
  /** Expiry, ms since the Unix epoch. */
  expiresAtMs: number;
  /** The invitation's delta; revoke it by this id. */
  id: Id;
  /** The token to hand the joiner (`mero-inv-…`). */
  invitation: string;
  /** The role a joiner gets. */
  role: Role;
  /** How many joins it admits. */
  uses: number;
}

/** `POST /admin/tokens`: a client token pair for one context. */
export interface IssueTokenRequest {
  /** The context the tokens are scoped to. */
  context: Id;
  /**
   * The member calls run as; it must be the one this node acts as in
   * the context (the default).
   */
  member?: Id | null;
  /** Methods the token may call (absent: all a client may call). */
  methods?: Array<string> | null;
  /** The access token's life in seconds (default one hour, at most 30 days). */
  ttlSecs?: number | null;
}

/** `POST /admin/contexts/join`. */
export interface JoinRequest {
  /** The invitation token. */
  invitation: string;
}

/** The `jsonrpc` member: always `"2.0"`. */
export type JsonRpc = "2.0";

/** `POST /admin/contexts/{id}/leave`. */
export interface Left {
  /** The context left. */
  left: Id;
}

/** A link fault as the node applies it (answers). */
export interface Link {
  /** Milliseconds its messages are held. */
  delayMs: number;
  /** Percent of its gossip dropped. */
  lossPercent: number;
  /** The peer; absent: every peer without a link of its own. */
  peer?: string;
}

/** Delay and loss on what one peer (or every peer) sends this node. */
export interface LinkFault {
  /** Held this long before the node sees it (at most 10,000). */
  delayMs?: number;
  /**
   * Gossip dropped with this probability, in percent (0 to 100);
   * catch-up frames are delayed a retransmission instead.
   */
  lossPercent?: number;
  /** The peer; absent: every peer without a link of its own. */
  peer?: string | null;
}

/**
 * Meet servers: where members of a context find each other without
 * telling the server the context.
 */
export interface MeetStatus {
  /** Members found at meet servers and dialed, since start. */
  found: number;
  /** Tags (one per context gossiped in) posted at the last round. */
  postedTags: number;
  /**
   * Connected meet servers this node posts to and looks members up at
   * (peer ids): bootstrap peers, relays and invitation addresses that
   * serve the meet protocol.
   */
  servers: Array<string>;
  /** Records this node keeps, when it serves as a meet server. */
  servingRecords?: number;
}

/** One member (`GET /admin/contexts/{id}/members`). */
export interface Member {
  /** Deltas it authored that this node applied. */
  deltas: number;
  /** If it signed two deltas with one seq: those two delta ids. */
  flagged: [Id, Id] | null;
  /** Who invited it (`null`: the creator). */
  invitedBy: Id | null;
  /** Member key. */
  key: Id;
  /** Whether it left. */
  left: boolean;
  /** Whether it is this node. */
  me: boolean;
  /** Whether an admin removed it. */
  removed: boolean;
  /** Its role. */
  role: Role;
}

/** `GET /admin/network`. */
export interface NetStatus {
  /** Peers banned for sending garbage, until their ban expires. */
  banned: Array<string>;
  /**
   * Where peers elsewhere reach it: configured public addresses and
   * relay circuits (with `/p2p/<peer id>`).
   */
  externalAddrs: Array<string>;
  /** The injected faults: only on a node started with `merod run --dev`. */
  faults?: Faults;
  /** Where it listens (with `/p2p/<peer id>`: give these to other nodes). */
  listenAddrs: Array<string>;
  /** Meet servers in use, and this node's own meet service. */
  meet: MeetStatus;
  /** This node's peer id. */
  peerId: string;
  /** Connected peers. */
  peers: Array<Peer>;
  /** This node's relay service, when it serves as one. */
  relayService?: RelayService;
  /** The relays this node reserves a slot on (`[network] relays`). */
  relays: Array<RelayReservation>;
}

/** `GET /admin/node`. */
export interface NodeStatus {
  /** Installed apps. */
  apps: number;
  /** Contexts held. */
  contexts: number;
  /**
   * Whether the node runs in dev mode (`merod run --dev`: fault
   * injection at `/admin/dev/faults`).
   */
  devMode: boolean;
  /** The node's identity key. */
  identity: Id;
  /** The HTTP address. */
  listen: string;
  /** Where it listens for peers. */
  p2pAddrs: Array<string>;
  /** Its libp2p peer id (`null` without networking). */
  peerId: string | null;
  /**
   * The node process's resident memory in bytes (`null` where the
   * platform does not tell).
   */
  rssBytes: number | null;
  /** When the node started (ms since the epoch). */
  startedAtMs: number;
  /** The node's version. */
  version: string;
}

/** How a peer is reached, all its connections together. */
export type PathKind = "direct" | "relayed";

/** One connected peer. */
export interface Peer {
  /** Every open connection to it. */
  connections: Array<Connection>;
  /** Contexts whose gossip it shares with this node. */
  contexts: Array<Id>;
  /** How it is reached. */
  path: PeerPath;
  /** Its peer id. */
  peerId: string;
  /** The last ping's round trip, in milliseconds. */
  rttMs?: number;
}

/** How a peer is reached: directly when any connection is direct. */
export interface PeerPath {
  /** Direct or relayed. */
  kind: PathKind;
  /** The transport of the connection used first (the direct one, if any). */
  transport: Transport;
  /** The relay's peer id, when relayed. */
  via?: string;
}

/** One peer of a context (`GET /admin/contexts/{id}/sync` only). */
export interface PeerSync {
  /** Deltas this node has that it lacks (at the last exchange). */
  ahead: number;
  /** Deltas it has that this node lacks (at the last exchange). */
  behind: number;
  /** Whether it is connected now. */
  connected: boolean;
  /** The last exchange with it (ms since the epoch). */
  lastExchangeMs?: number;
  /** The dev-mode fault on the link to it, if any. */
  link?: Link;
  /** Its peer id. */
  peerId: string;
  /** What this node received from it. */
  received: Traffic;
  /** What this node sent it. */
  sent: Traffic;
  /** Since when (ms since the epoch) the state has been what it is. */
  sinceMs?: number;
  /** How this node stands against it. */
  state: SyncState;
  /** Since when (ms since the epoch) it has not been connected. */
  unreachableSinceMs?: number;
}

/** What importing deltas did (`POST /admin/contexts/{id}/deltas`). */
export interface ReceiveReport {
  /** Deltas applied. */
  applied: number;
  /** Deltas buffered for missing parents. */
  buffered: number;
  /** Deltas refused. */
  rejected: number;
}

/** `POST /auth/refresh`: spends a refresh token for a new pair. */
export interface RefreshRequest {
  /** The refresh token of the current pair. It works once. */
  refreshToken: string;
  /** The new access token's life in seconds (default one hour). */
  ttlSecs?: number | null;
}

/**
 * A slot this node holds on a relay, so peers that cannot dial it reach
 * it through the relay.
 */
export interface RelayReservation {
  /** Accepted and live. */
  accepted: boolean;
  /**
   * The circuit address peers dial to reach this node (`null` until the
   * relay accepted).
   */
  address?: string;
  /** Why the last attempt failed, if it did. */
  error?: string;
  /** The relay's address, as configured. */
  relay: string;
  /** How often the relay renewed it. */
  renewals: number;
  /** When the relay last accepted (ms since the epoch). */
  sinceMs?: number;
}

/** This node's relay service (`[network.relay] serve = true`). */
export interface RelayService {
  /** Circuits open now. */
  circuits: number;
  /** Bytes one circuit may carry before the relay closes it. */
  maxCircuitBytes: number;
  /** Seconds one circuit may last. */
  maxCircuitSecs: number;
  /** Reservations held by other peers now. */
  reservations: number;
}

/** `DELETE /admin/apps/{hash}`. */
export interface Removed {
  /** The app removed. */
  removed: Id;
}

/** What a member may do in a context. */
export type Role = "admin" | "writer" | "reader";

/** A JSON-RPC error object. */
export interface RpcError {
  /** The code (see `RPC_ERRORS`). */
  code: number;
  /**
   * For -32003 (the app's error): `AppErrorData`. For other failures
   * of a call: `CallFailure`.
   */
  data?: unknown;
  /** What happened and what to do. */
  message: string;
}

/** The RPC methods that run an app method. */
export type RpcMethod = "execute" | "query";

/**
 * One JSON-RPC request: `execute` or `query`. A batch is an array of 1
 * to 1000 of them.
 */
export interface RpcRequest {
  /** Echoed in the answer. */
  id?: unknown;
  /** `"2.0"`. */
  jsonrpc: JsonRpc;
  /** `execute` or `query`. */
  method: RpcMethod;
  /** What to call. */
  params: CallParams;
}

/** A JSON-RPC response: `result` or `error`. */
export interface RpcResponse {
  /** Why it failed. */
  error?: RpcError;
  /** The request's id (`null` if it had none or could not be read). */
  id: unknown;
  /** `"2.0"`. */
  jsonrpc: JsonRpc;
  /** The call's result. */
  result?: CallResult;
}

/**
 * `PUT /admin/dev/faults`: replaces this node's faults as a whole
 * (idempotent; an empty body heals).
 */
export interface SetFaults {
  /** Peers refused both ways (at most 1,024). */
  blocked?: Array<string>;
  /** Cut off from every peer (known, connected, and any new one). */
  isolated?: boolean;
  /** Delay and loss on messages from peers (at most 1,024). */
  links?: Array<LinkFault>;
  /** Seed of the loss decisions, for reproducible tests. */
  seed?: number | null;
}

/** `PUT /admin/contexts/{id}/members/{member}/role`. */
export interface SetRoleRequest {
  /** The new role. */
  role: Role;
}

/**
 * A commit changed the context's heads (`method: "state"` on the
 * WebSocket, `event: state` over SSE). It follows the events of the
 * commit, which may hold several calls' deltas.
 */
export interface StateItem {
  /**
   * When this node committed the change (ms since the epoch): log
   * positions below `deltas` and not below the previous state item's
   * arrived by then. Absent in items stored by older nodes.
   */
  atMs?: number;
  /** The context. */
  context: Id;
  /** Deltas applied in the context. */
  deltas: number;
  /** The DAG heads after the commit. */
  heads: Array<Id>;
  /** Position in the context's stream. */
  id: number;
  /** `"state"`. */
  type: StateTag;
}

/** The `type` of a state item: always `"state"`. */
export type StateTag = "state";

/** One item of a context's stream. */
export type StreamItem = EventItem | StateItem;

/** WebSocket `subscribe` and `unsubscribe` params. */
export interface SubscribeParams {
  /**
   * `subscribe` only: per context, the last item id the client has;
   * every persisted item after it is sent first, in order, then live
   * items, none twice. Without it, only items after the subscription.
   */
  after?: Record<string, number> | null;
  /** The contexts. */
  contexts: Array<Id>;
}

/** The answer to `subscribe` and `unsubscribe`. */
export interface SubscribeResult {
  /**
   * `subscribe` only: per context subscribed by this request, the id of
   * its newest persisted item when the subscription started; items after
   * it follow (for a context given in `after`, the replay comes first).
   * Resume from it if the socket drops before any item arrives.
   */
  last?: Record<string, number>;
  /** Every context the socket is subscribed to now. */
  subscribed: Array<Id>;
}

/** How a replica stands against a peer, or against all of them. */
export type SyncState = "in_sync" | "behind" | "ahead" | "diverged" | "forked" | "unreachable" | "alone" | "unknown";

/**
 * A context's replication state (`GET /admin/contexts/{id}/sync`, and
 * `GET /contexts/{id}/sync` for its client tokens).
 */
export interface SyncStatus {
  /** The context. */
  context: Id;
  /** Deltas applied. */
  deltas: number;
  /** Digest of the heads (hex): equal digests, equal state. */
  digest: string;
  /** Equivocations applied (see the members list for who). */
  forks: number;
  /** Current DAG heads. */
  heads: Array<Id>;
  /**
   * When the heads last changed here (ms since the epoch; 0: not since
   * the node started).
   */
  headsChangedAtMs: number;
  /** Whether this node is still catching up before its join. */
  joining: boolean;
  /**
   * Per peer: on the admin route only (a client token never sees peer
   * ids).
   */
  peers?: Array<PeerSync>;
  /** Deltas waiting for missing parents. */
  pending: number;
  /** Refused deltas by reason since the node started. */
  rejected: Record<string, number>;
  /** How this node stands against the context's peers. */
  summary: SyncSummary;
  /** Applied deltas per author (member key). */
  vector: Record<string, number>;
}

/** A context's replication in one line (every `SyncStatus`). */
export interface SyncSummary {
  /** Most deltas this node has that a peer lacks. */
  ahead: number;
  /** Most deltas any peer has that this node lacks. */
  behind: number;
  /** Since when (ms since the epoch) this node has been behind. */
  behindSinceMs?: number;
  /** The latest exchange with any peer (ms since the epoch). */
  lastExchangeMs?: number;
  /** Peers recorded for this context. */
  peers: number;
  /** Of those, connected now. */
  reachable: number;
  /**
   * `forked` if any peer is; else `behind` if any peer has more; else
   * `in_sync` when every reachable peer is; `ahead` if only ahead;
   * `alone` without peers; `unreachable` when none is reachable.
   */
  state: SyncState;
}

/** `DELETE /admin/tokens/{tokenId}`. */
export interface TokenRevoked {
  /** The grant revoked. */
  revoked: string;
}

/** A client token pair. */
export interface Tokens {
  /** Send as `Authorization: Bearer <accessToken>` (or `?token=`). */
  accessToken: string;
  /** When the access token expires, Unix seconds. */
  expiresAt: number;
  /** When the refresh token expires, Unix seconds. */
  refreshExpiresAt: number;
  /** Exchange at `POST /auth/refresh` for a new pair, once. */
  refreshToken: string;
  /** The grant's id: `DELETE /admin/tokens/{tokenId}` revokes every pair of it. */
  tokenId: string;
}

/**
 * Messages, deltas and bytes one way between this node and a peer, for
 * one context, since the connection or the context was first seen.
 */
export interface Traffic {
  /** Their payload bytes. */
  bytes: number;
  /** Deltas that came by catch-up pages or by id. */
  catchUpDeltas: number;
  /** Deltas in them. */
  deltas: number;
  /** Deltas that came by gossip. */
  gossipDeltas: number;
  /** Gossip messages and catch-up answers with deltas. */
  messages: number;
}

/** How bytes travel on one connection. */
export type Transport = "tcp" | "quic" | "other";

/** `POST /admin/contexts/{id}/upgrade`. */
export interface UpgradeRequest {
  /** The installed app to switch to. */
  app: Id;
}

/** The node's JSON-RPC error codes, by name (from `mero_rpc::code`). */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  NODE_FAILURE: -32000,
  UNKNOWN_CONTEXT: -32001,
  UNKNOWN_METHOD: -32002,
  APP_ERROR: -32003,
  CALL_FAILED: -32004,
  MUTABILITY: -32005,
  FORBIDDEN: -32006,
  JOINING: -32007,
  REFUSED: -32008,
  QUARANTINED: -32009,
} as const;

/** Per JSON-RPC error code: the `kind` a client reports when the error's `data` names none, and what it means. */
export const RPC_ERRORS: Readonly<Record<number, { readonly kind: string; readonly meaning: string }>> = {
  [-32700]: { kind: "parse_error", meaning: "the body is not JSON" },
  [-32600]: { kind: "invalid_request", meaning: "not a JSON-RPC 2.0 request, a batch of the wrong size, or too large" },
  [-32601]: { kind: "method_not_found", meaning: "an unknown RPC method" },
  [-32602]: { kind: "invalid_params", meaning: "bad params, or arguments that do not match the app method" },
  [-32000]: { kind: "node_failure", meaning: "a node failure (storage), or too many requests in flight" },
  [-32001]: { kind: "unknown_context", meaning: "the node does not have the context" },
  [-32002]: { kind: "unknown_method", meaning: "the app has no such method, or no client may call it" },
  [-32003]: { kind: "app", meaning: "the app returned an error; data is {kind, code, data}" },
  [-32004]: { kind: "call_failed", meaning: "the call failed: panic, trap, timeout, out of memory, a limit" },
  [-32005]: { kind: "mutability", meaning: "a view tried to write, or a mutating method was queried" },
  [-32006]: { kind: "forbidden", meaning: "the token does not allow this context or method" },
  [-32007]: { kind: "joining", meaning: "the node is still joining the context; retry shortly" },
  [-32008]: { kind: "refused", meaning: "this node's member may not do this in the context" },
  [-32009]: { kind: "quarantined", meaning: "the context is quarantined until the node restarts" },
};
