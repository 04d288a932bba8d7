// Node cards: each node's own view polled every second from its API
// (`/admin/node`, `/admin/network`, `/admin/contexts/{ctx}/sync`), and the
// network lag the page computes from all nodes' vectors (a partitioned node
// cannot know how far behind it is; the others' vectors say it).

import { nodeGet } from "./api.js";
import { bytes, duration, el, replace, short } from "./dom.js";
import { send } from "./faults.js";
import { emit, node, nodes, on, store } from "./store.js";

const POLL_MS = 1000;
// A busy machine may take longer than a poll period; the in-flight guard
// skips polls meanwhile, so a slow node is not shown down.
const TIMEOUT_MS = 3000;
const cards = new Map(); // index -> { root, f: {field: element} }
const inFlight = new Set();

/** Starts the cards and the poll loop. */
export function start() {
  on("session", render);
  on("nodes", render);
  on("faults", render);
  on("nodeUp", (i) => {
    const p = store.polled.get(i);
    // A restarted or added node: read its context info again.
    if (p) p.info = null;
    poll(i);
  });
  render();
  setInterval(() => nodes().forEach((n) => poll(n.index)), POLL_MS);
  nodes().forEach((n) => poll(n.index));
}

async function poll(index) {
  const n = node(index);
  if (!n || inFlight.has(index)) return;
  inFlight.add(index);
  const ctx = encodeURIComponent(store.session.context);
  const prev = store.polled.get(index) || {};
  try {
    const [status, net, sync, info] = await Promise.allSettled([
      nodeGet(n, "/admin/node", TIMEOUT_MS),
      nodeGet(n, "/admin/network", TIMEOUT_MS),
      nodeGet(n, `/admin/contexts/${ctx}/sync`, TIMEOUT_MS),
      prev.info ? Promise.resolve(prev.info) : nodeGet(n, `/admin/contexts/${ctx}`, TIMEOUT_MS),
    ]);
    const failed = [status, net, sync].find((r) => r.status === "rejected");
    const p = {
      at: Date.now(),
      down: !!(failed && failed.reason.down),
      error: failed ? failed.reason.message : "",
      status: status.value ?? prev.status,
      net: net.value ?? prev.net,
      sync: sync.value ?? null,
      // What the node last said, for views that outlive an outage (the DAG).
      lastSync: sync.value ?? prev.lastSync ?? null,
      info: info.value ?? prev.info ?? null,
    };
    store.polled.set(index, p);
    emit("polled", index);
  } finally {
    inFlight.delete(index);
  }
  render();
}

/**
 * Per node index, how many deltas other nodes have applied that it lacks:
 * Σ over authors of max(0, highest seq any up node has − its own).
 */
export function networkLag() {
  const up = nodes()
    .map((n) => [n.index, store.polled.get(n.index)])
    .filter(([, p]) => p && !p.down && p.sync);
  const top = {};
  for (const [, p] of up) {
    for (const [a, s] of Object.entries(p.sync.vector)) top[a] = Math.max(top[a] || 0, s);
  }
  const lag = new Map();
  for (const [i, p] of up) {
    let behind = 0;
    for (const [a, s] of Object.entries(top)) behind += Math.max(0, s - (p.sync.vector[a] || 0));
    lag.set(i, behind);
  }
  return lag;
}

/** The card's one-line sync state: "in sync", "behind 3 since 2.1s", "unreachable". */
export function syncLine(view, p, lag, now = Date.now()) {
  if (!view.alive) return "down";
  if (!p) return "…";
  if (p.down) return "unreachable";
  if (!p.sync) return p.error || "no sync status";
  const s = p.sync.summary;
  const behind = Math.max(lag || 0, s.state === "behind" ? s.behind : 0);
  if (behind > 0) {
    const since = s.state === "behind" && s.behindSinceMs ? s.behindSinceMs : store.lagSince.get(view.index);
    const tail = s.state === "unreachable" ? " · peers unreachable" : "";
    return `behind ${behind}${since ? ` since ${duration(now - since)}` : ""}${tail}`;
  }
  switch (s.state) {
    case "in_sync":
      return "in sync";
    case "ahead":
      return `ahead ${s.ahead}`;
    case "diverged":
      return `diverged: behind ${s.behind}, ahead ${s.ahead}`;
    case "forked":
      return "forked (equivocation)";
    case "unreachable":
      return "unreachable";
    case "alone":
      return "alone";
    default:
      return "no exchange yet";
  }
}

/** The session's faults on node `i`, as short phrases. */
function faultsOf(i) {
  const f = store.session.faults || {};
  const out = [];
  if ((f.partition || []).some((side) => side.includes(i))) out.push("partitioned");
  const d = f.delays && f.delays[String(i)];
  if (d) out.push(`delay ${d} ms`);
  const l = f.losses && f.losses[String(i)];
  if (l) out.push(`loss ${l} %`);
  return out;
}

function card(view) {
  const f = {};
  const field = (name, label) => {
    f[name] = el("dd", { class: name });
    return [el("dt", {}, label), f[name]];
  };
  const i = view.index;
  const delay = el("input", { type: "number", min: "0", max: "10000", value: "200", class: "delay-ms", title: "ms" });
  const loss = el("input", { type: "number", min: "0", max: "100", value: "10", class: "loss-pct", title: "%" });
  f.title = el("span", { class: "up" });
  f.faults = el("div", { class: "faults" });
  const root = el(
    "article",
    { class: "card", dataset: { node: String(i) } },
    el("h3", {}, `node ${i} `, f.title),
    el("dl", {}, field("sync", "sync"), field("peers", "peers"), field("deltas", "deltas"), field("heads", "heads"),
      field("memory", "memory"), field("peer", "peer id")),
    f.faults,
    el(
      "div",
      { class: "actions" },
      el("button", { class: "partition", onclick: () => send({ command: "partition", nodes: [i] }) }, "partition"),
      el("button", { class: "kill", onclick: () => send({ command: "kill", node: i }) }, "kill"),
      el("button", { class: "restart", onclick: () => send({ command: "restart", node: i }) }, "restart"),
      el("span", { class: "knob" }, delay,
        el("button", { class: "delay", onclick: () => send({ command: "delay", node: i, ms: Number(delay.value) }) }, "delay")),
      el("span", { class: "knob" }, loss,
        el("button", { class: "loss", onclick: () => send({ command: "loss", node: i, percent: Number(loss.value) }) }, "loss")),
    ),
  );
  return { root, f };
}

function render() {
  const box = document.getElementById("nodes");
  if (!store.session || !box) return;
  const views = nodes();
  for (const v of views) {
    if (!cards.has(v.index)) cards.set(v.index, card(v));
  }
  for (const [i, c] of cards) {
    if (!views.some((v) => v.index === i)) {
      c.root.remove();
      cards.delete(i);
    }
  }
  if (views.some((v, k) => box.children[k] !== cards.get(v.index).root)) {
    replace(box, ...views.map((v) => cards.get(v.index).root));
  }
  const lag = networkLag();
  const now = Date.now();
  for (const v of views) {
    const l = lag.get(v.index) || 0;
    if (l > 0 && !store.lagSince.has(v.index)) store.lagSince.set(v.index, now);
    if (l === 0) store.lagSince.delete(v.index);
    fill(v, cards.get(v.index).f, l, now);
  }
}

function fill(v, f, lag, now) {
  const p = store.polled.get(v.index);
  const up = v.alive && p && !p.down;
  f.title.textContent = !v.alive ? "down" : p?.down ? "not answering" : "up";
  f.title.className = up ? "up" : "down";
  const line = syncLine(v, p, lag, now);
  f.sync.textContent = line;
  f.sync.dataset.state = line.split(" ")[0];
  const sync = up ? p.sync : null;
  const peers = up && p.net ? p.net.peers.length : null;
  f.peers.textContent =
    peers === null ? "–" : `${peers} connected` + (sync ? ` (${sync.summary.reachable}/${sync.summary.peers} of the context)` : "");
  f.deltas.textContent = sync ? `${sync.deltas}${sync.pending ? ` (+${sync.pending} pending)` : ""}` : "–";
  f.heads.textContent = sync ? `${sync.heads.length} · digest ${short(sync.digest)}` : "–";
  const rss = up ? p.status?.rssBytes : undefined;
  f.memory.textContent = !up ? "–" : typeof rss === "number" ? bytes(rss) : "not reported";
  f.peer.textContent = v.peerId ? `…${v.peerId.slice(-8)}` : "–";
  f.peer.title = v.peerId || "";
  const faults = faultsOf(v.index);
  if (p?.net?.faults?.dropped) faults.push(`${p.net.faults.dropped} dropped`);
  replace(f.faults, ...faults.map((t) => el("span", { class: "badge" }, t)));
}
