// Sync status against a real node (one node, so no peers): the client
// route carries a summary and never peer ids; peerSync() needs the admin
// token and answers the per-peer rows.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MeroClient, MeroError } from "../dist/index.js";
import { client, env, unique } from "./support.js";

let c;
let adminClient;

before(async () => {
  c = await client();
  adminClient = new MeroClient({ url: env.url, context: env.context, token: env.adminToken });
});

after(() => {
  c.close();
  adminClient.close();
});

describe("sync summary and peers", () => {
  test("the client route has a summary, heads' time, and no peers", async () => {
    const before = Date.now();
    await c.execute("deposit", { account: unique("sync"), amount: 1 });
    const s = await c.syncStatus();
    assert.equal(s.summary.state, "alone");
    assert.equal(s.summary.peers, 0);
    assert.equal(s.summary.behind, 0);
    assert.ok(!("peers" in s), "a client token never sees peer ids");
    assert.ok(s.headsChangedAtMs >= before - 1000, `${s.headsChangedAtMs} vs ${before}`);
  });

  test("peerSync() with the admin token lists the peers", async () => {
    const s = await adminClient.peerSync();
    assert.deepEqual(s.peers, []);
    assert.equal(s.context, env.context);
    assert.equal(s.summary.state, "alone");
  });

  test("peerSync() with a client token is forbidden", async () => {
    try {
      await c.peerSync();
    } catch (e) {
      assert.ok(e instanceof MeroError, `not a MeroError: ${e}`);
      assert.equal(e.kind, "forbidden");
      return;
    }
    assert.fail("a client token read the per-peer rows");
  });
});
