// What the suites share: the node they run against (from the environment
// runtime/node/tests/js_client.rs sets), admin requests, a TCP proxy that
// can cut every connection through it, polling.

import net from "node:net";

import { MeroClient } from "../dist/index.js";

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(
      `${name} is not set: these suites run against a real node; run them with ` +
        "`cargo test --release --workspace --test js_client`, which starts one",
    );
  }
  return v;
}

/** The node and context under test. */
export const env = {
  url: need("MERO_URL"),
  context: need("MERO_CONTEXT"),
  token: need("MERO_TOKEN"),
  refreshToken: need("MERO_REFRESH_TOKEN"),
  adminToken: need("MERO_ADMIN_TOKEN"),
};

/** The WebSocket constructor (Node.js 20: run with --experimental-websocket). */
export const WebSocketImpl = globalThis.WebSocket;
if (typeof WebSocketImpl !== "function") {
  throw new Error("no global WebSocket: run node with --experimental-websocket (Node.js 20) or use Node.js 22+");
}

/** An admin request to the node; the parsed body (throws on a non-2xx status). */
export async function admin(method, path, body) {
  const resp = await fetch(`${env.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${env.adminToken}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

/** A fresh client-token grant for the context. */
export function grant(body = {}) {
  return admin("POST", "/admin/tokens", { context: env.context, ...body });
}

/** A client of the context with `token` (default: a fresh grant). */
export async function client(opts = {}) {
  let { token, refreshToken } = opts;
  if (token === undefined) {
    const g = await grant();
    token = g.accessToken;
    refreshToken = g.refreshToken;
  }
  return new MeroClient({ url: env.url, context: env.context, WebSocket: WebSocketImpl, ...opts, token, refreshToken });
}

/** A name no other run or suite uses. */
export function unique(prefix) {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it is truthy; fails after `ms` saying `what`. */
export async function until(cond, what, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A TCP proxy to `target` (an http:// URL) on a loopback port. `cut()`
 * destroys every connection through it at once, as a network failure
 * would; new connections keep working.
 */
export async function proxy(target) {
  const { hostname, port } = new URL(target);
  const open = new Set();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect(Number(port), hostname);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    get accepted() {
      return accepted;
    },
    cut() {
      for (const s of [...open]) s.destroy();
      open.clear();
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
