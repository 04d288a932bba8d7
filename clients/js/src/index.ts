// @mero/client: talk to a mero node from browsers and Node.js.
//
// It must not depend on anything at run time beyond what browsers and
// Node.js 20 have (`fetch`, `WebSocket`, `atob`, timers). The wire types in
// `api.ts` are generated from the node's Rust types (crate mero-api); do
// not edit them here.

export { MeroClient } from "./client.js";
export type { BatchCall, BatchResult, MeroClientOptions } from "./client.js";
export { MeroError } from "./errors.js";
export type { MeroErrorInit } from "./errors.js";
export { Subscription } from "./subscription.js";
export type { ReconnectOptions, SubscriptionHandlers, SubscriptionStatus } from "./subscription.js";
export { claims, refreshMargin } from "./tokens.js";
export { RPC_ERRORS, RpcCode } from "./api.js";
export type {
  AppErrorData,
  CallFailure,
  CallErrorKind,
  EventItem,
  Gap,
  PeerSync,
  StateItem,
  StreamItem,
  SyncState,
  SyncStatus,
  SyncSummary,
  Tokens,
  Traffic,
} from "./api.js";

/** A stream item that is an app event (alias of {@link EventItem}). */
export type AppEvent = import("./api.js").EventItem;
/** A stream item that reports new heads (alias of {@link StateItem}). */
export type StateChange = import("./api.js").StateItem;
