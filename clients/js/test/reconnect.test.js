// Reconnect with resume: the subscription goes through a TCP proxy that
// cuts every connection, several times, while a writer (straight to the
// node) keeps the context's stream busy. Every item must arrive once, in
// order, with consecutive ids.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MeroClient } from "../dist/index.js";
import { client, env, proxy, sleep, unique, until } from "./support.js";

test("cut mid-stream: the subscription reconnects and resumes, nothing lost or repeated", async () => {
  const px = await proxy(env.url);
  const reader = await client({ url: px.url, reconnect: { minDelayMs: 20, maxDelayMs: 300 } });
  const writer = new MeroClient({ url: env.url, context: env.context, token: env.adminToken });
  const acct = unique("stream");
  const items = [];
  const statuses = [];
  const sub = reader.subscribe({
    onEvent: (e) => items.push(e),
    onState: (s) => items.push(s),
    onStatus: (s) => statuses.push(s),
  });
  try {
    await until(() => statuses.includes("open"), "the subscription to open");
    const start = sub.lastId;
    const writes = 90;
    const cuts = new Set([15, 40, 41, 70]);
    for (let i = 0; i < writes; i++) {
      await writer.execute("deposit", { account: acct, amount: 1 });
      if (cuts.has(i)) px.cut();
      await sleep(10);
    }
    // A marker after the stream: once it is here, everything before it is too.
    const marker = unique("marker");
    await writer.execute("deposit", { account: marker, amount: 1 });
    await until(
      () => items.some((e) => e.type === "event" && e.data.account === marker),
      "the marker event",
    );
    const mine = items.filter((e) => e.type === "event" && e.data.account === acct);
    assert.equal(mine.length, writes, "each write's event exactly once");
    items.forEach((item, i) => assert.equal(item.id, start + 1 + i, `item ${i}: ids are consecutive`));
    assert.ok(items.some((e) => e.type === "state"), "state items come too");
    // It really was cut and came back: a reconnect per cut (two cuts in a row may fall in one).
    const reconnects = statuses.filter((s) => s === "reconnecting").length;
    assert.ok(reconnects >= 3, `reconnected ${reconnects} times: ${statuses}`);
    assert.ok(px.accepted >= 4, `${px.accepted} connections through the proxy`);
    assert.equal(statuses.at(-1), "open");
  } finally {
    reader.close();
    writer.close();
    await px.close();
  }
  assert.equal(statuses.at(-1), "closed");
});

test("a subscription resumes from its last id even when no item came before the cut", async () => {
  const px = await proxy(env.url);
  const reader = await client({ url: px.url, reconnect: { minDelayMs: 200, maxDelayMs: 400 } });
  const writer = new MeroClient({ url: env.url, context: env.context, token: env.adminToken });
  const acct = unique("quiet");
  const items = [];
  let opened = 0;
  const sub = reader.subscribe({
    onEvent: (e) => items.push(e),
    onState: (s) => items.push(s),
    onStatus: (s) => {
      if (s === "open") opened += 1;
    },
  });
  try {
    await until(() => opened === 1, "the subscription to open");
    const start = sub.lastId;
    // Cut, then write while the client is away (it waits at least 100 ms).
    px.cut();
    await writer.execute("deposit", { account: acct, amount: 1 });
    await until(() => opened === 2, "the reconnect");
    await until(() => items.some((e) => e.type === "event" && e.data.account === acct), "the event written while away");
    assert.equal(items[0].id, start + 1, "the replay starts right after the subscription's start");
    items.forEach((item, i) => assert.equal(item.id, start + 1 + i));
  } finally {
    reader.close();
    writer.close();
    await px.close();
  }
});
