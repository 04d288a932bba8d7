// The reload history of the session: every rebuild `cargo mero dev` ran
// (from `/session` and `reload` events), with its build, install and agree
// times, the ABI and schema diff lines, or why it failed.

import { clock, duration, el, replace, short } from "./dom.js";
import { on, store } from "./store.js";

/** Draws the history now and on every reload. */
export function start() {
  on("session", render);
  on("reload", render);
  render();
}

function item(r) {
  const times = r.ok
    ? `build ${duration(r.buildMs)} · install ${duration(r.installMs)} · agree ${duration(r.agreeMs)}`
    : `failed after ${duration(r.buildMs)}`;
  const diff = (cls, lines) =>
    lines && lines.length ? el("pre", { class: `diff ${cls}` }, lines.join("\n")) : null;
  return el(
    "li",
    { class: r.ok ? "ok" : "failed" },
    el("time", {}, clock(r.atMs)),
    el("span", { class: "app" }, r.ok ? `app ${short(r.app)}` : "kept the running app"),
    el("span", { class: "times" }, times),
    r.error ? el("pre", { class: "error" }, r.error) : null,
    diff("abi", r.abiDiff),
    diff("schema", r.schemaDiff),
  );
}

function render() {
  const list = document.getElementById("reloads");
  if (!list || !store.session) return;
  const all = [...(store.session.reloads || [])].reverse();
  replace(list, ...(all.length ? all.map(item) : [el("li", { class: "empty" }, "no reload yet: save a source file")]));
}
