// Talking to the session (its key from the URL fragment) and to the nodes
// (their own API, with the tokens `/session` hands out). Nothing here keeps
// state; errors are thrown as `ApiError` with what to do in the message.

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", down = false } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.down = down;
  }
}

/** The session key from `#key=...`, or null. */
export function sessionKey() {
  const m = /(?:^#|&)key=([0-9a-fA-F]+)/.exec(location.hash);
  return m ? m[1] : null;
}

async function json(resp, what) {
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(`${what}: not JSON (HTTP ${resp.status})`, { status: resp.status });
  }
  if (!resp.ok) {
    const e = body && body.error ? body.error : {};
    throw new ApiError(`${what}: ${e.message || `HTTP ${resp.status}`}`, {
      status: resp.status,
      code: e.code || "",
    });
  }
  return body;
}

/** GET `/session`: the nodes, their tokens, faults, reloads. */
export async function getSession(key) {
  const resp = await fetch("/session", { headers: { Authorization: `Bearer ${key}` } });
  if (resp.status === 401) {
    throw new ApiError("the session refused this page's key: open the URL `cargo mero dev` printed", {
      status: 401,
    });
  }
  return json(resp, "GET /session");
}

/** POST `/control` with one command; resolves to the `ControlAnswer`. */
export async function control(key, command) {
  const resp = await fetch("/control", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(command),
  });
  return json(resp, `${command.command}`);
}

/** The session's event stream; `onEvent` gets each parsed `SessionEvent`. */
export function sessionEvents(key, onEvent, onOpen, onError) {
  const es = new EventSource(`/session/events?key=${encodeURIComponent(key)}`);
  es.onmessage = (m) => {
    try {
      onEvent(JSON.parse(m.data));
    } catch (e) {
      console.warn("bad session event", e);
    }
  };
  es.onopen = onOpen;
  es.onerror = onError;
  return es;
}

/**
 * GET `path` on a node with its admin token. A refused connection or a
 * timeout is `down`; an HTTP error carries the node's error code.
 */
export async function nodeGet(node, path, timeoutMs = 2000) {
  let resp;
  try {
    resp = await fetch(node.url + path, {
      headers: { Authorization: `Bearer ${node.adminToken}` },
      signal: AbortSignal.timeout(timeoutMs),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(`node ${node.index} does not answer (${e.name})`, { down: true });
  }
  return json(resp, `node ${node.index} GET ${path.split("?")[0]}`);
}

let rpcId = 0;

/**
 * `execute` or `query` through `POST /jsonrpc` with the node's client token.
 * Resolves to the JSON-RPC answer (`result` or `error`), as the node sent it.
 */
export async function rpc(node, kind, context, method, args) {
  const body = { jsonrpc: "2.0", id: ++rpcId, method: kind, params: { context, method, args } };
  let resp;
  try {
    resp = await fetch(node.url + "/jsonrpc", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${node.clientToken || node.adminToken}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(`node ${node.index} does not answer (${e.name})`, { down: true });
  }
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`node ${node.index}: HTTP ${resp.status}: ${text.slice(0, 200)}`, {
      status: resp.status,
    });
  }
}
