// The client token, kept fresh: refreshed at `POST /auth/refresh` a while
// before it expires (its JWT `exp`), at most one refresh at a time. A
// refresh token works once, and the node revokes the whole grant if one is
// used twice, so two refreshes must never race.

import type { RefreshRequest, Tokens } from "./api.js";
import { MeroError, isRecord } from "./errors.js";

/** Seconds of an access token's life, read from its JWT (without checking it: the node does). */
export function claims(token: string): { exp?: number; iat?: number } {
  const part = token.split(".")[1];
  if (part === undefined) return {};
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    return isRecord(json)
      ? {
          ...(typeof json.exp === "number" ? { exp: json.exp } : {}),
          ...(typeof json.iat === "number" ? { iat: json.iat } : {}),
        }
      : {};
  } catch {
    return {};
  }
}

/** How long before expiry to refresh: a third of the token's life, between 1 s and 60 s. */
export function refreshMargin(lifeSecs: number): number {
  return Math.min(60_000, Math.max(1_000, (lifeSecs * 1000) / 3));
}

const MAX_DELAY = 2 ** 31 - 1;

/** @internal */
export class TokenKeeper {
  #access: string;
  #refresh: string | undefined;
  #refreshAt = Infinity;
  #lifeSecs: number | undefined;
  #pending: Promise<string> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Why refreshing stopped working (the grant was revoked, the refresh token spent). */
  #dead: MeroError | undefined;

  constructor(
    private readonly url: string,
    access: string,
    refresh: string | undefined,
    private readonly onTokens: ((t: Tokens) => void) | undefined,
    private readonly fetchImpl: typeof fetch,
  ) {
    this.#access = access;
    this.#refresh = refresh;
    this.#plan(access);
  }

  /** The access token as it is now. */
  get current(): string {
    return this.#access;
  }

  /** Whether a refresh is possible at all. */
  get canRefresh(): boolean {
    return this.#refresh !== undefined && this.#dead === undefined;
  }

  /** Why the access token is of no more use: expired, and no refresh can replace it. */
  get spent(): MeroError | undefined {
    if (this.canRefresh) return undefined;
    const exp = claims(this.#access).exp;
    if (exp === undefined || exp * 1000 > Date.now()) return undefined;
    return (
      this.#dead ??
      new MeroError("the client token has expired and there is no refresh token to renew it; ask for a new one", {
        kind: "token_expired",
        code: 401,
      })
    );
  }

  /** The access token, refreshed first if it is due. */
  async fresh(): Promise<string> {
    if (this.canRefresh && Date.now() >= this.#refreshAt) return this.refresh();
    return this.#access;
  }

  /** Refreshes now (joining a refresh in flight). */
  refresh(): Promise<string> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (this.#refresh === undefined) {
      return Promise.reject(
        new MeroError("the access token cannot be refreshed: no refresh token was given", {
          kind: "token_expired",
          code: 401,
        }),
      );
    }
    this.#pending ??= this.#spend(this.#refresh).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  async #spend(refreshToken: string): Promise<string> {
    const body: RefreshRequest = { refreshToken };
    if (this.#lifeSecs !== undefined) body.ttlSecs = this.#lifeSecs;
    let resp: Response;
    try {
      resp = await this.fetchImpl(`${this.url}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (cause) {
      // The node is unreachable: try again shortly, the token may still hold.
      this.#retrySoon();
      throw new MeroError(`cannot reach the node at ${this.url} to refresh the token`, {
        kind: "unreachable",
        code: 0,
        cause,
      });
    }
    const answer: unknown = await resp.json().catch(() => undefined);
    if (!resp.ok) {
      const err = MeroError.fromHttp(resp.status, answer, this.url);
      if (resp.status === 401 || resp.status === 400) this.#dead = err;
      else this.#retrySoon();
      throw err;
    }
    const t = answer as Tokens;
    if (!isRecord(t) || typeof t.accessToken !== "string" || typeof t.refreshToken !== "string") {
      this.#retrySoon();
      throw new MeroError(`unexpected answer from ${this.url}/auth/refresh`, { kind: "bad_response", code: resp.status });
    }
    this.#access = t.accessToken;
    this.#refresh = t.refreshToken;
    this.#plan(t.accessToken, t.expiresAt);
    this.onTokens?.(t);
    return t.accessToken;
  }

  #plan(access: string, expiresAt?: number): void {
    const c = claims(access);
    const exp = expiresAt ?? c.exp;
    if (exp === undefined) return;
    if (c.iat !== undefined && this.#lifeSecs === undefined) this.#lifeSecs = Math.max(1, exp - c.iat);
    const life = this.#lifeSecs ?? Math.max(1, exp - Date.now() / 1000);
    this.#refreshAt = exp * 1000 - refreshMargin(life);
    this.#arm(this.#refreshAt - Date.now());
  }

  #retrySoon(): void {
    this.#arm(1_000);
  }

  #arm(delayMs: number): void {
    if (this.#closed || !this.canRefresh) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    // Timers cannot wait longer than 2^31 - 1 ms (24.8 days); tokens may live 30 days.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (Date.now() < this.#refreshAt && delayMs > MAX_DELAY) {
        this.#arm(this.#refreshAt - Date.now());
        return;
      }
      // Failures are seen by the next request, which refreshes again if due.
      this.refresh().catch(() => {});
    }, Math.min(MAX_DELAY, Math.max(0, delayMs)));
    // A pending refresh must not keep a Node.js process alive on its own.
    (this.#timer as { unref?: () => void }).unref?.();
  }
}
