// Calls against a real node running runtime/fixtures/policy-app: execute
// and query, every kind of typed error, JSON-RPC batches, the sync status.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { MeroError, RpcCode } from "../dist/index.js";
import { admin, client, env, grant, unique } from "./support.js";

let c;
/** The ABI's code of an `#[app::error]` variant. */
let codeOf;

before(async () => {
  c = await client();
  const info = await admin("GET", `/admin/contexts/${env.context}`);
  const abi = await admin("GET", `/admin/apps/${info.app}`);
  codeOf = (variant) => {
    for (const e of abi.errors) for (const v of e.variants) if (v.name === variant) return v.code;
    throw new Error(`no error variant ${variant} in the ABI`);
  };
});

after(() => c.close());

/** The MeroError a promise rejects with. */
async function failure(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MeroError, `not a MeroError: ${e}`);
    return e;
  }
  assert.fail("the call succeeded");
}

describe("execute and query", () => {
  test("execute changes state, query reads it", async () => {
    const acct = unique("ann");
    assert.equal(await c.execute("deposit", { account: acct, amount: 5 }), 5);
    assert.equal(await c.execute("deposit", { account: acct, amount: 2 }), 7);
    assert.equal(await c.query("balance", { account: acct }), 7);
    // A view through execute works too; it writes nothing.
    assert.equal(await c.execute("balance", { account: acct }), 7);
  });

  test("args default to none", async () => {
    assert.deepEqual(await c.query("notes", { account: unique("nobody") }), []);
  });
});

describe("typed errors", () => {
  test("a struct variant: kind, code from #[code], fields as data, Display as message", async () => {
    const acct = unique("bob");
    await c.execute("deposit", { account: acct, amount: 5 });
    const e = await failure(c.execute("withdraw", { account: acct, amount: 9 }));
    assert.equal(e.kind, "Insufficient");
    assert.equal(e.code, 1001);
    assert.deepEqual(e.data, { account: acct, balance: 5, wanted: 9 });
    assert.equal(e.message, `${acct} holds 5, not 9`);
    assert.equal(e.rpcCode, RpcCode.APP_ERROR);
    // The refused withdrawal changed nothing.
    assert.equal(await c.query("balance", { account: acct }), 5);
  });

  test("a tuple variant with a derived code", async () => {
    const acct = unique("nobody");
    const e = await failure(c.execute("withdraw", { account: acct, amount: 1 }));
    assert.equal(e.kind, "NoAccount");
    assert.equal(e.code, codeOf("NoAccount"));
    assert.ok(e.code > 0);
    assert.equal(e.data, acct);
  });

  test("a one-field variant with a code, and a unit variant without Display", async () => {
    const neg = await failure(c.execute("deposit", { account: unique("x"), amount: -3 }));
    assert.deepEqual([neg.kind, neg.code, neg.data], ["NotPositive", 1003, -3]);
    const empty = await failure(c.execute("note", { account: unique("x"), text: "" }));
    assert.deepEqual([empty.kind, empty.code, empty.data, empty.message], ["Empty", codeOf("Empty"), null, "Empty"]);
    const long = await failure(c.execute("note", { account: unique("x"), text: "x".repeat(40) }));
    assert.deepEqual([long.kind, long.data], ["TooLong", { max: 32 }]);
  });

  test("an untyped app error: kind app, code 0, its payload", async () => {
    const e = await failure(c.execute("refuse"));
    assert.deepEqual([e.kind, e.code, e.data, e.message], ["app", 0, { why: "test" }, "refused on purpose"]);
  });

  test("failures that are not the app's carry the node's kind and the JSON-RPC code", async () => {
    const q = await failure(c.query("deposit", { account: "a", amount: 1 }));
    assert.deepEqual([q.kind, q.code, q.rpcCode], ["mutability", RpcCode.MUTABILITY, RpcCode.MUTABILITY]);
    const unknown = await failure(c.execute("no_such_method"));
    assert.deepEqual([unknown.kind, unknown.code], ["unknown_method", RpcCode.UNKNOWN_METHOD]);
    const private_ = await failure(c.execute("freeze"));
    assert.equal(private_.code, RpcCode.UNKNOWN_METHOD);
    const args = await failure(c.execute("deposit", { account: "a", amount: "many" }));
    assert.deepEqual([args.kind, args.code], ["invalid_args", RpcCode.INVALID_PARAMS]);
  });

  test("a token that does not allow the method: forbidden, HTTP 403", async () => {
    const narrow = await grant({ methods: ["balance"] });
    const n = await client({ token: narrow.accessToken, refreshToken: narrow.refreshToken });
    try {
      const e = await failure(n.execute("deposit", { account: "a", amount: 1 }));
      assert.deepEqual([e.kind, e.code], ["forbidden", RpcCode.FORBIDDEN]);
      assert.equal(typeof (await n.query("balance", { account: "a" })), "number");
    } finally {
      n.close();
    }
  });

  test("a token the node does not know: a REST error with the node's code", async () => {
    const bad = await client({ token: "not.a.token" });
    try {
      const e = await failure(bad.query("balance", { account: "a" }));
      assert.deepEqual([e.kind, e.code, e.status], ["invalid_token", 401, 401]);
      assert.equal(e.rpcCode, undefined);
    } finally {
      bad.close();
    }
  });
});

describe("batches", () => {
  test("run in order; each succeeds or fails on its own", async () => {
    const acct = unique("carol");
    const out = await c.batch([
      { kind: "execute", method: "deposit", args: { account: acct, amount: 10 } },
      { kind: "query", method: "balance", args: { account: acct } },
      { kind: "execute", method: "withdraw", args: { account: acct, amount: 100 } },
      { kind: "execute", method: "withdraw", args: { account: acct, amount: 4 } },
      { kind: "query", method: "balance", args: { account: acct } },
    ]);
    assert.equal(out.length, 5);
    assert.deepEqual(out[0], { ok: true, output: 10 });
    assert.deepEqual(out[1], { ok: true, output: 10 });
    assert.equal(out[2].ok, false);
    assert.ok(out[2].error instanceof MeroError);
    assert.deepEqual([out[2].error.kind, out[2].error.code], ["Insufficient", 1001]);
    assert.deepEqual(out[3], { ok: true, output: 6 });
    assert.deepEqual(out[4], { ok: true, output: 6 });
    assert.deepEqual(await c.batch([]), []);
  });

  test("a token out of scope for one call runs none of them", async () => {
    const acct = unique("dave");
    const narrow = await grant({ methods: ["deposit", "balance"] });
    const n = await client({ token: narrow.accessToken, refreshToken: narrow.refreshToken });
    try {
      const e = await failure(
        n.batch([
          { kind: "execute", method: "deposit", args: { account: acct, amount: 1 } },
          { kind: "execute", method: "withdraw", args: { account: acct, amount: 1 } },
        ]),
      );
      assert.equal(e.kind, "forbidden");
      assert.equal(await n.query("balance", { account: acct }), 0);
    } finally {
      n.close();
    }
  });
});

describe("sync status", () => {
  test("a client token reads its context's replication state", async () => {
    await c.execute("deposit", { account: unique("erin"), amount: 1 });
    const s = await c.syncStatus();
    assert.equal(s.context, env.context);
    assert.ok(s.deltas >= 1);
    assert.ok(s.heads.length >= 1);
    assert.match(s.digest, /^[0-9a-f]+$/);
    assert.equal(s.joining, false);
    assert.equal(s.pending, 0);
    assert.equal(Object.values(s.vector).reduce((a, b) => a + b, 0), s.deltas);
  });
});
