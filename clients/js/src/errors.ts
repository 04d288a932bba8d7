// Every failure a client sees, typed: the app's own errors (`#[app::error]`,
// JSON-RPC -32003 with `{kind, code, data}`), the node's other JSON-RPC
// errors, REST errors (`{"error": {code, message}}`), and transport failures.

import { RPC_ERRORS, RpcCode } from "./api.js";
import type { ErrorBody, RpcError } from "./api.js";

/** What a {@link MeroError} is built from. */
export interface MeroErrorInit {
  kind: string;
  code: number;
  data?: unknown;
  rpcCode?: number;
  status?: number;
  cause?: unknown;
}

/**
 * A failed call or request.
 *
 * - An app's error (JSON-RPC -32003): `kind` is the `#[app::error]` variant's
 *   name (`"app"` for an untyped `app::bail!`), `code` its number (0 untyped),
 *   `data` its fields.
 * - Another failure of a call: `kind` is the node's failure class when it
 *   sends one (`invalid_args`, `unknown_method`, `timeout`, `panic`, ...), else
 *   the JSON-RPC code's kind (`unknown_context`, `forbidden`, `joining`, ...);
 *   `code` is the JSON-RPC code.
 * - A REST failure: `kind` is the node's error code (`unauthorized`,
 *   `token_expired`, ...), `code` the HTTP status.
 * - No answer: `kind` `"unreachable"` (or `"bad_response"` for an answer that
 *   is not the node's), `code` 0.
 *
 * `rpcCode` is the JSON-RPC error code whenever there is one.
 */
export class MeroError extends Error {
  readonly kind: string;
  readonly code: number;
  readonly data: unknown;
  readonly rpcCode?: number;
  /** The HTTP status, when the failure came with one. */
  readonly status?: number;

  constructor(message: string, init: MeroErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "MeroError";
    this.kind = init.kind;
    this.code = init.code;
    this.data = init.data ?? null;
    if (init.rpcCode !== undefined) this.rpcCode = init.rpcCode;
    if (init.status !== undefined) this.status = init.status;
  }

  /** A JSON-RPC error object as the node sends it. */
  static fromRpc(err: RpcError, status?: number): MeroError {
    const d = err.data;
    const base = { rpcCode: err.code, ...(status === undefined ? {} : { status }) };
    if (err.code === RpcCode.APP_ERROR && isRecord(d) && typeof d.kind === "string") {
      return new MeroError(err.message, {
        ...base,
        kind: d.kind,
        code: typeof d.code === "number" ? d.code : 0,
        data: d.data ?? null,
      });
    }
    const kind = isRecord(d) && typeof d.kind === "string" ? d.kind : (RPC_ERRORS[err.code]?.kind ?? "rpc_error");
    const data = isRecord(d) && "kind" in d ? (d.data ?? null) : (d ?? null);
    return new MeroError(err.message, { ...base, kind, code: err.code, data });
  }

  /** A REST error answer (`{"error": {code, message, data?}}`). */
  static fromHttp(status: number, body: unknown, url: string): MeroError {
    const e = isRecord(body) ? (body as Partial<ErrorBody>).error : undefined;
    if (isRecord(e) && typeof e.code === "string") {
      return new MeroError(typeof e.message === "string" ? e.message : e.code, {
        kind: e.code,
        code: status,
        data: e.data ?? null,
        status,
      });
    }
    return new MeroError(`the node at ${url} answered ${status}`, { kind: "bad_response", code: status, status });
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
