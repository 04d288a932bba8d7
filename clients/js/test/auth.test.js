// Token refresh: MERO_TOKEN lives a few seconds (js_client.rs issues it
// with ttlSecs 3). Calls and a subscription keep working well past its
// expiry, the client refreshing before each token runs out.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MeroClient, MeroError, claims } from "../dist/index.js";
import { WebSocketImpl, env, grant, sleep, unique, until } from "./support.js";

test("refresh before expiry: calls and events go on past the first token's life", async () => {
  const first = claims(env.token);
  assert.ok(first.exp && first.iat && first.exp - first.iat <= 5, "MERO_TOKEN must be short-lived");
  const pairs = [];
  const refreshedAt = [];
  // Every answer the client got: a refresh that comes in time means no 401, ever.
  const refused = [];
  const counting = async (url, init) => {
    const r = await fetch(url, init);
    if (r.status === 401) refused.push(String(url));
    return r;
  };
  const c = new MeroClient({
    url: env.url,
    context: env.context,
    token: env.token,
    refreshToken: env.refreshToken,
    WebSocket: WebSocketImpl,
    reconnect: { minDelayMs: 50, maxDelayMs: 500 },
    onTokens: (t) => {
      pairs.push(t);
      refreshedAt.push(Date.now());
    },
    fetch: counting,
  });
  const acct = unique("refresh");
  const ids = [];
  let deposits = 0;
  let opened = 0;
  const sub = c.subscribe({
    onEvent: (e) => {
      ids.push(e.id);
      if (e.kind === "Deposited" && e.data.account === acct) deposits += 1;
    },
    onState: (s) => ids.push(s.id),
    onStatus: (s) => {
      if (s === "open") opened += 1;
    },
  });
  try {
    await until(() => opened > 0, "the subscription to open");
    const start = sub.lastId;
    // Keep calling until well after the first token (and its successors)
    // expired. (If this suite started late, the first token is spent already:
    // the first call refreshes it.)
    const end = Math.max(Date.now(), first.exp * 1000) + 5_000;
    let n = 0;
    while (Date.now() < end) {
      await c.execute("deposit", { account: acct, amount: 1 });
      n += 1;
      await sleep(150);
    }
    assert.equal(await c.query("balance", { account: acct }), n);
    assert.ok(pairs.length >= 2, `refreshed ${pairs.length} times in ${n} calls`);
    assert.deepEqual(refused, [], "no request went out with an expired token");
    // Each refresh came before the token it replaced expired (the first one
    // may come late if this suite started after MERO_TOKEN's life).
    for (let i = 1; i < pairs.length; i++) {
      const exp = claims(pairs[i - 1].accessToken).exp * 1000;
      assert.ok(refreshedAt[i] < exp, `refresh ${i} came ${refreshedAt[i] - exp} ms after the expiry`);
    }
    // Each kept the grant's short life and handed over a new refresh token.
    for (const t of pairs) {
      const cl = claims(t.accessToken);
      assert.ok(cl.exp - cl.iat <= 5);
      assert.equal(t.expiresAt, cl.exp);
    }
    assert.notEqual(c.token, env.token);
    assert.equal(new Set(pairs.map((t) => t.refreshToken)).size, pairs.length);
    // The node closed the socket when the token it was opened with expired;
    // the subscription came back with a fresh one and missed nothing.
    await until(() => deposits === n, `${n} Deposited events (have ${deposits})`);
    assert.ok(opened >= 2, `opened ${opened} times`);
    ids.forEach((id, i) => assert.equal(id, start + 1 + i, `item ${i} has id ${id}`));
    // The first token is dead now: the node says so to anyone still holding it.
    const old = await fetch(`${env.url}/contexts/${env.context}/sync`, {
      headers: { Authorization: `Bearer ${env.token}` },
    });
    assert.equal(old.status, 401);
    assert.equal((await old.json()).error.code, "token_expired");
    // And the grant is still whole (a refresh token spent twice would have
    // revoked it): the current token works.
    assert.ok((await c.syncStatus()).deltas > 0);
  } finally {
    c.close();
  }
});

test("without a refresh token, an expired token fails calls and ends subscriptions", async () => {
  const { accessToken } = await grant({ ttlSecs: 1 });
  const c = new MeroClient({ url: env.url, context: env.context, token: accessToken, WebSocket: WebSocketImpl });
  const statuses = [];
  const errors = [];
  c.subscribe({ onStatus: (s) => statuses.push(s), onError: (e) => errors.push(e) });
  try {
    await until(() => statuses.includes("open"), "the subscription to open");
    await sleep((claims(accessToken).exp + 0.2) * 1000 - Date.now());
    await assert.rejects(c.query("balance", { account: "a" }), (e) => {
      assert.ok(e instanceof MeroError);
      assert.deepEqual([e.kind, e.code, e.status], ["token_expired", 401, 401]);
      return true;
    });
    // The node closed the socket; the subscription sees there is no way back.
    await until(() => statuses.at(-1) === "closed", `the subscription to end (${statuses})`);
    assert.equal(errors.at(-1)?.kind, "token_expired");
  } finally {
    c.close();
  }
});
