// Recent deltas as a DAG: one column per author, edges to parents (SVG),
// and per node whether each delta reached it and when.
//
// Each node's log is read in pages of headers (`GET
// /admin/contexts/{ctx}/dag?from=`: position, id, author, seq, parents,
// kind) and merged by id. Arrival: log position p reached a node when one
// of its state items first counted more than p deltas (the item's `atMs`,
// or when the page got it from a node that does not send one). "Reached"
// is exact from the vectors (vector[author] >= seq).

import { nodeGet } from "./api.js";
import { clock, el, replace, short, svg, throttle } from "./dom.js";
import { node, nodes, on, store } from "./store.js";

const WINDOW = 100; // positions read on first sight of a node
const SHOWN = 60; // rows drawn
const KEEP = 500; // deltas remembered

const deltas = new Map(); // id -> { id, author, seq, parents, kind, order }
const logs = new Map(); // node index -> { next, pos: Map(id -> pos), arrivals: Map(pos -> ms), seen, busy, error }
let order = 0;

/** Wires the readers to the pollers and the event streams. */
export function start() {
  const draw = throttle(500, render);
  on("polled", (i) => read(i).then(draw));
  on("stateItem", ({ index, item, at }) => {
    const log = logs.get(index);
    if (!log) return;
    for (let p = log.seen ?? item.deltas; p < item.deltas; p++) if (!log.arrivals.has(p)) log.arrivals.set(p, at);
    log.seen = Math.max(log.seen ?? 0, item.deltas);
    draw();
  });
  on("nodes", draw);
}

async function read(i) {
  const p = store.polled.get(i);
  const n = node(i);
  if (!n || !p || p.down || !p.sync) return;
  let log = logs.get(i);
  if (!log || p.sync.deltas < log.next) {
    const from = Math.max(0, p.sync.deltas - WINDOW);
    log = { next: from, pos: new Map(), arrivals: new Map(), seen: p.sync.deltas, busy: false, error: "" };
    logs.set(i, log);
  }
  if (log.busy || log.next >= p.sync.deltas) return;
  log.busy = true;
  try {
    const ctx = encodeURIComponent(store.session.context);
    const page = await nodeGet(n, `/admin/contexts/${ctx}/dag?from=${log.next}&limit=500`);
    for (const e of page.entries) {
      log.pos.set(e.id, e.pos);
      if (!deltas.has(e.id)) {
        deltas.set(e.id, { id: e.id, author: e.author, seq: e.seq, parents: e.parents, kind: e.kind, order: order++ });
      }
    }
    log.next = page.next;
    log.error = "";
    prune();
  } catch (e) {
    log.error = e.message;
  } finally {
    log.busy = false;
  }
}

function prune() {
  if (deltas.size <= KEEP) return;
  const old = [...deltas.values()].sort((a, b) => a.order - b.order).slice(0, deltas.size - KEEP);
  for (const d of old) deltas.delete(d.id);
}

/** Rows oldest first: by height in the DAG, then author and seq. */
function rows() {
  const height = new Map();
  const h = (id, depth = 0) => {
    if (height.has(id)) return height.get(id);
    const d = deltas.get(id);
    if (!d || depth > 2000) return 0;
    const v = 1 + Math.max(0, ...d.parents.map((p) => h(p, depth + 1)));
    height.set(id, v);
    return v;
  };
  const all = [...deltas.values()].map((d) => ({ d, height: h(d.id) }));
  all.sort((a, b) => a.height - b.height || (a.d.author < b.d.author ? -1 : a.d.author > b.d.author ? 1 : a.d.seq - b.d.seq));
  return all.slice(-SHOWN).map((r) => r.d);
}

function authorLabel(author) {
  for (const n of nodes()) {
    if (store.polled.get(n.index)?.info?.member === author) return `node ${n.index}`;
  }
  return short(author);
}

/** Per node: "+12 ms", "yes" (arrived before the page looked), "missing", or "down?" (no answer now). */
function arrival(d, i, t0) {
  const p = store.polled.get(i);
  const sync = p?.sync || p?.lastSync;
  const has = sync && (sync.vector[d.author] || 0) >= d.seq;
  if (!has) return p && !p.sync ? ["down?", "unknown"] : ["missing", "missing"];
  const log = logs.get(i);
  const pos = log?.pos.get(d.id);
  const at = pos === undefined ? undefined : log.arrivals.get(pos);
  if (at === undefined || t0 === undefined) return ["yes", "reached"];
  return [at === t0 ? "first" : `+${Math.round(at - t0)} ms`, "reached"];
}

function render() {
  const box = document.getElementById("dag");
  if (!box || !store.session) return;
  const list = rows();
  const authors = [...new Set(list.map((d) => d.author))];
  const ROW = 22, COL = 56, TOP = 28;
  const x = (a) => COL / 2 + authors.indexOf(a) * COL;
  const y = (k) => TOP + k * ROW;
  const index = new Map(list.map((d, k) => [d.id, k]));
  const graphW = Math.max(1, authors.length) * COL;
  const views = nodes();
  const width = graphW + 170 + views.length * 90;
  const g = svg("svg", { width, height: TOP + list.length * ROW + 6, class: "dag", role: "img" });
  authors.forEach((a) =>
    g.append(svg("text", { x: x(a), y: 14, class: "author", "text-anchor": "middle" }, authorLabel(a), svg("title", {}, a))),
  );
  views.forEach((n, k) => g.append(svg("text", { x: graphW + 170 + k * 90, y: 14, class: "col" }, `node ${n.index}`)));
  list.forEach((d, k) => {
    for (const p of d.parents) {
      if (!index.has(p)) continue;
      const pd = list[index.get(p)];
      g.append(svg("line", { x1: x(d.author), y1: y(k), x2: x(pd.author), y2: y(index.get(p)), class: "edge" }));
    }
  });
  list.forEach((d, k) => {
    const times = views.map((n) => {
      const log = logs.get(n.index);
      const pos = log?.pos.get(d.id);
      return pos === undefined ? undefined : log.arrivals.get(pos);
    }).filter((t) => t !== undefined);
    const t0 = times.length ? Math.min(...times) : undefined;
    const row = svg("g", { class: `delta ${d.kind}`, "data-id": d.id, "data-author": d.author, "data-seq": String(d.seq) });
    row.append(svg("circle", { cx: x(d.author), cy: y(k), r: 6 }, svg("title", {}, `${d.id}\n${d.kind} #${d.seq} by ${d.author}`)));
    row.append(svg("text", { x: graphW + 6, y: y(k) + 4, class: "id" }, `${short(d.id)} ${d.kind} #${d.seq}`));
    views.forEach((n, c) => {
      const [text, cls] = arrival(d, n.index, t0);
      row.append(svg("text", { x: graphW + 170 + c * 90, y: y(k) + 4, class: `arr ${cls}`, "data-node": String(n.index) },
        text === "first" && t0 !== undefined ? clock(t0) : text));
    });
    g.append(row);
  });
  replace(box, list.length ? g : el("p", { class: "empty" }, "no deltas yet"), ...problems());
}

/** The nodes whose log could not be read, and why. */
function problems() {
  return nodes()
    .filter((n) => logs.get(n.index)?.error)
    .map((n) => el("p", { class: "error" }, `node ${n.index}: ${logs.get(n.index).error}`));
}
