// The context's event stream of every node (`GET /events?context=&token=`,
// one EventSource each): app events listed as they arrive, and state items
// passed on (`stateItem`) for the state tree and the delta arrival times.

import { clock, el, short } from "./dom.js";
import { emit, node, nodes, on, store } from "./store.js";

const MAX_ROWS = 200;
const sources = new Map(); // index -> { es, url }

/** Opens a stream per node and keeps them matched to the session's nodes. */
export function start() {
  on("session", sync);
  on("nodes", sync);
  on("nodeUp", (i) => open(i, true));
  sync();
}

function sync() {
  for (const n of nodes()) open(n.index, false);
  for (const [i, s] of sources) {
    if (!node(i)) {
      s.es.close();
      sources.delete(i);
    }
  }
}

function streamUrl(n) {
  const q = new URLSearchParams({ context: store.session.context, token: n.clientToken || n.adminToken });
  return `${n.url}/events?${q}`;
}

/** (Re)opens node `i`'s stream; `fresh` replaces an open one (a restart). */
function open(i, fresh) {
  const n = node(i);
  if (!n) return;
  const url = streamUrl(n);
  const cur = sources.get(i);
  if (cur && cur.url === url && !fresh && cur.es.readyState !== EventSource.CLOSED) return;
  if (cur) cur.es.close();
  const es = new EventSource(url);
  es.addEventListener("event", (m) => onItem(i, m, "event"));
  es.addEventListener("state", (m) => onItem(i, m, "state"));
  es.addEventListener("gap", (m) => row(i, "gap", m.data, false));
  es.addEventListener("error", (m) => {
    // A message named `error` carries why the node ended the stream (a
    // revoked token); a plain error is a dropped connection, retried.
    if (m.data) row(i, "stream ended", m.data, false);
  });
  sources.set(i, { es, url });
}

function onItem(i, m, kind) {
  let item;
  try {
    item = JSON.parse(m.data);
  } catch {
    return;
  }
  const at = Date.now();
  if (kind === "state") {
    emit("stateItem", { index: i, item, at: item.atMs ?? at });
    return;
  }
  const data = JSON.stringify(item.data);
  row(i, item.kind, data, item.local, item.author, item.delta, at);
}

function row(i, kind, data, local, author = "", delta = "", at = Date.now()) {
  const list = document.getElementById("events");
  if (!list) return;
  list.prepend(
    el(
      "li",
      { dataset: { node: String(i) } },
      el("time", {}, clock(at)),
      el("span", { class: "who" }, `node ${i}`),
      el("span", { class: "kind" }, kind),
      el("code", { class: "data" }, data.length > 300 ? `${data.slice(0, 300)}…` : data),
      el("span", { class: local ? "local" : "remote" }, local ? "local" : "remote"),
      delta ? el("span", { class: "delta", title: `delta ${delta} by ${author}` }, `Δ ${short(delta)}`) : null,
    ),
  );
  while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
}
