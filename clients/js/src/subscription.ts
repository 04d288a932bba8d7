// A context's event stream over the node's WebSocket, kept open: when the
// socket drops it reconnects with exponential backoff and subscribes with
// `after` = the last item id it delivered, so the node replays what was
// missed. Items are delivered in order, each once: an item whose id is not
// above the last one delivered is dropped.

import type { EventItem, Gap, StateItem, SubscribeParams, SubscribeResult } from "./api.js";
import { MeroError, isRecord } from "./errors.js";
import type { TokenKeeper } from "./tokens.js";

/** Where a subscription is: connected, waiting to reconnect, or over for good. */
export type SubscriptionStatus = "open" | "reconnecting" | "closed";

/** What a subscription calls. Each is optional. */
export interface SubscriptionHandlers {
  /** An app event (`#[app::event]`) from a delta applied on the node. */
  onEvent?(e: EventItem): void;
  /** A commit changed the context's heads. */
  onState?(s: StateItem): void;
  /** The connection opened, dropped (a reconnect is coming) or closed for good. */
  onStatus?(s: SubscriptionStatus): void;
  /** Items were pruned by the node's retention before they could be replayed. */
  onGap?(g: Gap): void;
  /** Why the subscription closed for good, or why a reconnect failed. */
  onError?(e: MeroError): void;
}

/** How a subscription reconnects. */
export interface ReconnectOptions {
  /** First delay after a drop (default 100 ms); doubles per failed attempt. */
  minDelayMs?: number;
  /** Longest delay (default 10 s). */
  maxDelayMs?: number;
  /** A socket silent this long is taken as dead and replaced (default 30 s). */
  idleMs?: number;
}

/** @internal What a subscription needs from its client. */
export interface SubscriptionDeps {
  url: string;
  context: string;
  tokens: TokenKeeper;
  WebSocket: typeof WebSocket;
  reconnect: ReconnectOptions;
  onClosed(s: Subscription): void;
}

/** A live subscription: {@link Subscription.close} ends it. */
export class Subscription {
  #ws: WebSocket | undefined;
  #last: number | undefined;
  #attempt = 0;
  #closed = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #idle: ReturnType<typeof setInterval> | undefined;
  #heard = 0;
  #nextId = 1;

  /** @internal */
  constructor(
    private readonly deps: SubscriptionDeps,
    private readonly handlers: SubscriptionHandlers,
  ) {
    void this.#connect();
  }

  /** The id of the last item delivered (`undefined` before the first subscription answered). */
  get lastId(): number | undefined {
    return this.#last;
  }

  /** Ends the subscription; no handler is called after `onStatus("closed")`. */
  close(): void {
    this.#finish();
  }

  #finish(err?: MeroError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    if (this.#idle !== undefined) clearInterval(this.#idle);
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(1000, "closed by the client");
    if (err) this.handlers.onError?.(err);
    this.handlers.onStatus?.("closed");
    this.deps.onClosed(this);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let token: string;
    try {
      token = await this.deps.tokens.fresh();
    } catch (e) {
      const err = e instanceof MeroError ? e : new MeroError(String(e), { kind: "token", code: 0, cause: e });
      // A revoked grant or spent refresh token will not come back.
      if (!this.deps.tokens.canRefresh) return this.#finish(err);
      this.handlers.onError?.(err);
      return this.#dropped();
    }
    if (this.#closed) return;
    // The node would refuse the handshake, again and again.
    const spent = this.deps.tokens.spent;
    if (spent) return this.#finish(spent);
    const base = this.deps.url.replace(/^http/, "ws");
    let ws: WebSocket;
    try {
      ws = new this.deps.WebSocket(`${base}/ws?token=${encodeURIComponent(token)}`);
    } catch (e) {
      return this.#finish(new MeroError(`cannot open a WebSocket to ${base}/ws: ${String(e)}`, { kind: "unreachable", code: 0, cause: e }));
    }
    this.#ws = ws;
    this.#heard = Date.now();
    ws.onopen = () => this.#subscribe(ws);
    ws.onmessage = (m: MessageEvent) => {
      if (ws !== this.#ws) return;
      this.#heard = Date.now();
      this.#message(typeof m.data === "string" ? m.data : "");
    };
    // A connection cut during the handshake may report only an error (seen
    // with Node.js's WebSocket): either event means this socket is done.
    ws.onclose = () => this.#lost(ws);
    ws.onerror = () => this.#lost(ws);
    this.#watch(ws);
  }

  /** `ws` is gone (closed, failed, or silent): drop it and reconnect. */
  #lost(ws: WebSocket): void {
    if (ws !== this.#ws || this.#closed) return;
    this.#ws = undefined;
    try {
      ws.close(4000, "replaced");
    } catch {
      // Already closed.
    }
    this.#dropped();
  }

  #subscribe(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    const params: SubscribeParams = { contexts: [this.deps.context] };
    if (this.#last !== undefined) params.after = { [this.deps.context]: this.#last };
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: this.#nextId++, method: "subscribe", params }));
  }

  /**
   * Replaces a socket that went silent: a half-open connection sends no
   * close, and a handshake through a dead network may never end.
   */
  #watch(ws: WebSocket): void {
    const idle = this.deps.reconnect.idleMs ?? 30_000;
    const handshake = Math.min(idle, 10_000);
    if (this.#idle !== undefined) clearInterval(this.#idle);
    this.#idle = setInterval(() => {
      if (ws !== this.#ws) return;
      const open = ws.readyState === 1;
      if (Date.now() - this.#heard > (open ? idle : handshake)) return this.#lost(ws);
      if (open) ws.send(JSON.stringify({ jsonrpc: "2.0", id: this.#nextId++, method: "ping" }));
    }, Math.max(50, Math.min(handshake, idle / 3)));
    (this.#idle as { unref?: () => void }).unref?.();
  }

  #message(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!isRecord(msg)) return;
    if (msg.method === "event" || msg.method === "state") {
      const item = msg.params as EventItem | StateItem;
      if (!isRecord(item) || typeof item.id !== "number" || item.context !== this.deps.context) return;
      if (this.#last !== undefined && item.id <= this.#last) return;
      this.#last = item.id;
      if (item.type === "event") this.handlers.onEvent?.(item);
      else this.handlers.onState?.(item);
      return;
    }
    if (msg.method === "gap") {
      this.handlers.onGap?.(msg.params as Gap);
      return;
    }
    if (isRecord(msg.error)) {
      // Only `subscribe` can fail here: the context is gone, or the token may not see it.
      return this.#finish(MeroError.fromRpc(msg.error as { code: number; message: string; data?: unknown }));
    }
    const result = msg.result as SubscribeResult | undefined;
    if (isRecord(result) && Array.isArray(result.subscribed)) {
      this.#last ??= result.last?.[this.deps.context] ?? 0;
      this.#attempt = 0;
      this.handlers.onStatus?.("open");
    }
  }

  #dropped(): void {
    if (this.#closed) return;
    if (this.#idle !== undefined) clearInterval(this.#idle);
    this.handlers.onStatus?.("reconnecting");
    const min = this.deps.reconnect.minDelayMs ?? 100;
    const max = this.deps.reconnect.maxDelayMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** this.#attempt) * (0.5 + Math.random() / 2);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect();
    }, delay);
  }
}
