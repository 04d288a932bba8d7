// The client of one context on one node, with a client token: calls over
// `POST /jsonrpc`, subscriptions over `/ws`, the sync status at
// `GET /contexts/{id}/sync` (and, with the admin token, per peer at
// `GET /admin/contexts/{id}/sync`).

import type { CallResult, PeerSync, RpcError, RpcRequest, RpcResponse, SyncStatus, Tokens } from "./api.js";
import { MeroError, isRecord } from "./errors.js";
import { Subscription } from "./subscription.js";
import type { ReconnectOptions, SubscriptionHandlers } from "./subscription.js";
import { TokenKeeper } from "./tokens.js";

/** How to reach the node, and as whom. */
export interface MeroClientOptions {
  /** The node's HTTP base URL, e.g. `http://127.0.0.1:2428`. */
  url: string;
  /** The context id. */
  context: string;
  /** A client token of the context (`POST /admin/tokens`), or the admin token. */
  token: string;
  /** Its refresh token: the access token is then refreshed before it expires. */
  refreshToken?: string;
  /**
   * The WebSocket constructor for subscriptions. Defaults to `globalThis.WebSocket`
   * (browsers, Node.js 22+, Node.js 20 with `--experimental-websocket`).
   */
  WebSocket?: typeof WebSocket;
  /** Called with each new token pair; store it to survive a reload. */
  onTokens?(t: Tokens): void;
  /** How subscriptions reconnect. */
  reconnect?: ReconnectOptions;
  /** The fetch implementation (defaults to `globalThis.fetch`). */
  fetch?: typeof fetch;
}

/** One call of a {@link MeroClient.batch}. */
export interface BatchCall {
  kind: "execute" | "query";
  method: string;
  args?: Record<string, unknown>;
}

/** One answer of a {@link MeroClient.batch}, in the order of the calls. */
export type BatchResult = { ok: true; output: unknown } | { ok: false; error: MeroError };

/** A client of one context on one node. */
export class MeroClient {
  readonly url: string;
  readonly context: string;
  #tokens: TokenKeeper;
  #fetch: typeof fetch;
  #WebSocket: typeof WebSocket | undefined;
  #reconnect: ReconnectOptions;
  #subs = new Set<Subscription>();
  #nextId = 1;

  constructor(opts: MeroClientOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.context = opts.context;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("no fetch: pass `fetch` in the options");
    this.#fetch = f.bind(globalThis);
    this.#WebSocket = opts.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    this.#reconnect = opts.reconnect ?? {};
    this.#tokens = new TokenKeeper(this.url, opts.token, opts.refreshToken, opts.onTokens, this.#fetch);
  }

  /** The access token in use now. */
  get token(): string {
    return this.#tokens.current;
  }

  /** Runs a method (a mutating one changes state and replicates); its output. */
  execute<T = unknown>(method: string, args: Record<string, unknown> = {}): Promise<T> {
    return this.#one("execute", method, args) as Promise<T>;
  }

  /** Runs a view; its output. */
  query<T = unknown>(method: string, args: Record<string, unknown> = {}): Promise<T> {
    return this.#one("query", method, args) as Promise<T>;
  }

  /**
   * Runs calls in order in one request (consecutive `execute`s are committed
   * together); each succeeds or fails on its own. Throws only if none ran (a
   * token that does not allow one of them, an unreachable node).
   */
  async batch(calls: BatchCall[]): Promise<BatchResult[]> {
    if (calls.length === 0) return [];
    const reqs = calls.map((c) => this.#request(c.kind, c.method, c.args ?? {}));
    const answer = await this.#post("/jsonrpc", reqs);
    if (!Array.isArray(answer)) {
      // The whole batch was refused (HTTP 403, -32006) or could not be read.
      if (isRecord(answer) && isRecord(answer.error)) throw MeroError.fromRpc(answer.error as unknown as RpcError);
      throw new MeroError(`unexpected answer to a batch from ${this.url}`, { kind: "bad_response", code: 0 });
    }
    const byId = new Map<unknown, RpcResponse>();
    for (const a of answer as RpcResponse[]) if (isRecord(a)) byId.set(a.id, a);
    return reqs.map((r): BatchResult => {
      const a = byId.get(r.id);
      if (a?.error) return { ok: false, error: MeroError.fromRpc(a.error) };
      if (a?.result) return { ok: true, output: a.result.output };
      return {
        ok: false,
        error: new MeroError(`the node sent no answer for call ${String(r.id)}`, { kind: "bad_response", code: 0 }),
      };
    });
  }

  /** Subscribes to the context's events and state changes; see {@link Subscription}. */
  subscribe(handlers: SubscriptionHandlers): Subscription {
    const ctor = this.#WebSocket;
    if (ctor === undefined) {
      throw new MeroError(
        "no WebSocket: pass `WebSocket` in the options (Node.js 20 has one only with --experimental-websocket)",
        { kind: "no_websocket", code: 0 },
      );
    }
    const sub = new Subscription(
      {
        url: this.url,
        context: this.context,
        tokens: this.#tokens,
        WebSocket: ctor,
        reconnect: this.#reconnect,
        onClosed: (s) => this.#subs.delete(s),
      },
      handlers,
    );
    this.#subs.add(sub);
    return sub;
  }

  /**
   * Whether the node has caught up with the context: heads, digest, pending
   * deltas, and a `summary` of how it stands against its peers (no peer ids).
   */
  async syncStatus(): Promise<SyncStatus> {
    return (await this.#get(`/contexts/${encodeURIComponent(this.context)}/sync`)) as SyncStatus;
  }

  /**
   * The sync status with one row per peer (`GET /admin/contexts/{id}/sync`):
   * needs the admin token; a client token gets a `MeroError` with kind
   * `forbidden`.
   */
  async peerSync(): Promise<SyncStatus & { peers: PeerSync[] }> {
    const s = (await this.#get(`/admin/contexts/${encodeURIComponent(this.context)}/sync`)) as SyncStatus;
    return { ...s, peers: s.peers ?? [] };
  }

  /** Closes every subscription and stops refreshing the token. */
  close(): void {
    for (const s of [...this.#subs]) s.close();
    this.#tokens.close();
  }

  #request(kind: "execute" | "query", method: string, args: Record<string, unknown>): RpcRequest {
    return { jsonrpc: "2.0", id: this.#nextId++, method: kind, params: { context: this.context, method, args } };
  }

  async #one(kind: "execute" | "query", method: string, args: Record<string, unknown>): Promise<unknown> {
    const answer = (await this.#post("/jsonrpc", this.#request(kind, method, args))) as RpcResponse;
    if (!isRecord(answer)) {
      throw new MeroError(`unexpected answer from ${this.url}/jsonrpc`, { kind: "bad_response", code: 0 });
    }
    if (answer.error) throw MeroError.fromRpc(answer.error);
    return (answer.result as CallResult).output;
  }

  #get(path: string): Promise<unknown> {
    return this.#send(path, { method: "GET" });
  }

  #post(path: string, body: unknown): Promise<unknown> {
    return this.#send(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /**
   * One exchange with a fresh token; a `token_expired` answer (a refresh that
   * came too late, a sleeping laptop) refreshes and retries once.
   */
  async #send(path: string, init: RequestInit, retried = false): Promise<unknown> {
    const token = await this.#tokens.fresh();
    let resp: Response;
    try {
      resp = await this.#fetch(`${this.url}${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` },
      });
    } catch (cause) {
      throw new MeroError(`cannot reach the node at ${this.url}: ${String(cause)}`, { kind: "unreachable", code: 0, cause });
    }
    const body: unknown = await resp.json().catch(() => undefined);
    // JSON-RPC answers carry their own errors, with HTTP 200, 403 or 413.
    if (path === "/jsonrpc" && (Array.isArray(body) || (isRecord(body) && body.jsonrpc === "2.0"))) return body;
    if (resp.ok) return body;
    const err = MeroError.fromHttp(resp.status, body, this.url);
    if (err.kind === "token_expired" && !retried && this.#tokens.canRefresh) {
      await this.#tokens.refresh();
      return this.#send(path, init, true);
    }
    throw err;
  }
}
