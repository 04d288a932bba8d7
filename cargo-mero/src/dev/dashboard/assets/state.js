// The context's state on one node as a collapsible tree
// (`GET /admin/contexts/{ctx}/state`), refetched at most twice a second when
// that node's event stream shows a state item. Values that changed since
// the last fetch flash.

import { nodeGet } from "./api.js";
import { el, replace, throttle } from "./dom.js";
import { node, nodes, on, store } from "./store.js";

const closed = new Set(); // paths the user folded, kept across refreshes
let selected = 1;
let previous = new Map(); // path -> JSON text of the leaf
let seq = 0; // drops answers that arrive after a newer request

/** Wires the node picker and the refresh triggers. */
export function start() {
  const pick = document.getElementById("state-node");
  pick.addEventListener("change", () => {
    selected = Number(pick.value);
    previous = new Map();
    refresh();
  });
  const refreshSoon = throttle(500, refresh);
  on("session", () => {
    picker();
    refresh();
  });
  on("nodes", picker);
  on("stateItem", ({ index }) => index === selected && refreshSoon());
  on("nodeUp", (i) => i === selected && refreshSoon());
  picker();
  refresh();
}

function picker() {
  const pick = document.getElementById("state-node");
  const want = nodes().map((n) => String(n.index));
  if ([...pick.options].map((o) => o.value).join() !== want.join()) {
    replace(pick, ...want.map((i) => el("option", { value: i }, `node ${i}`)));
  }
  if (!want.includes(String(selected)) && want.length) selected = Number(want[0]);
  pick.value = String(selected);
}

async function refresh() {
  const n = node(selected);
  const box = document.getElementById("state");
  if (!n || !store.session) return;
  const mine = ++seq;
  const ctx = encodeURIComponent(store.session.context);
  try {
    const state = await nodeGet(n, `/admin/contexts/${ctx}/state`);
    if (mine !== seq) return;
    const leaves = new Map();
    replace(box, tree("", "state", state, leaves, 0));
    box.dataset.node = String(selected);
    box.classList.remove("stale");
    previous = leaves;
  } catch (e) {
    if (mine !== seq) return;
    box.classList.add("stale");
    box.dataset.error = e.message;
    box.title = e.message;
  }
}

function tree(path, label, value, leaves, depth) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const d = el(
      "details",
      { open: !closed.has(path) && depth < 6, dataset: { path } },
      el("summary", {}, el("span", { class: "key" }, label), el("span", { class: "count" },
        Array.isArray(value) ? ` [${entries.length}]` : ` {${entries.length}}`)),
      el("ul", {}, ...entries.map(([k, v]) => el("li", {}, tree(`${path}/${k}`, k, v, leaves, depth + 1)))),
    );
    d.addEventListener("toggle", () => (d.open ? closed.delete(path) : closed.add(path)));
    return d;
  }
  const text = JSON.stringify(value);
  leaves.set(path, text);
  const changed = previous.size > 0 && previous.get(path) !== text;
  return el(
    "span",
    { class: changed ? "leaf changed" : "leaf", dataset: { path } },
    el("span", { class: "key" }, label),
    ": ",
    el("span", { class: `value ${value === null ? "null" : typeof value}` }, text),
  );
}
