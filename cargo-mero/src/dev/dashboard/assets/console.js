// The call console: a form per client-callable method of the running app,
// generated from its ABI (`GET /admin/apps/{hash}`), on a node the user
// picks. Views run as `query`, mutating methods as `execute`
// (`POST /jsonrpc` with the node's client token); the output or the typed
// error is shown as the node answered it.

import { nodeGet, rpc } from "./api.js";
import { el, replace } from "./dom.js";
import { node, nodes, on, store } from "./store.js";

let abi = null;

/** Wires the node picker and (re)builds the forms whenever the app changes. */
export function start() {
  on("session", () => {
    picker();
    load();
  });
  on("nodes", picker);
  on("app", load);
  picker();
  load();
}

function picker() {
  const pick = document.getElementById("console-node");
  const want = nodes().map((n) => String(n.index));
  const cur = pick.value;
  if ([...pick.options].map((o) => o.value).join() !== want.join()) {
    replace(pick, ...want.map((i) => el("option", { value: i }, `node ${i}`)));
  }
  pick.value = want.includes(cur) ? cur : want[0] || "";
}

async function load() {
  const box = document.getElementById("console");
  const hash = store.session?.app;
  if (!hash) return;
  // Any node that answers has the app (they all installed it).
  for (const n of nodes().filter((n) => n.alive)) {
    try {
      abi = await nodeGet(n, `/admin/apps/${encodeURIComponent(hash)}`);
      box.dataset.app = hash;
      replace(box, ...callable(abi).map(([m, kind]) => form(m, kind)));
      return;
    } catch (e) {
      replace(box, el("p", { class: "error" }, `cannot read the app's ABI: ${e.message}`));
    }
  }
}

/** The methods a client may call, with how: as `mero_abi::MethodKind` decides. */
export function callable(abi) {
  const handlers = new Set(abi.events.map((e) => e.handler).filter(Boolean));
  return abi.methods
    .filter((m) => !m.init && !handlers.has(m.name) && !m.private)
    .map((m) => [m, m.mutability === "view" ? "query" : "execute"]);
}

/** What input a Rust type text gets: the parts of `parseType` the form needs. */
export function parseType(text) {
  let t = text.trim().replace(/^&\s*('\w+\s*)?(mut\s+)?/, "");
  let optional = false;
  const opt = /^(?:std::option::|core::option::)?Option\s*<(.*)>$/s.exec(t);
  if (opt) {
    optional = true;
    t = opt[1].trim().replace(/^&\s*('\w+\s*)?/, "");
  }
  const name = t.split("::").pop();
  let input = "json";
  if (["String", "str", "char", "PathBuf", "BlobId", "ContextId", "NodeId"].includes(name)) input = "text";
  else if (name === "bool") input = "bool";
  else if (/^(u|i)(8|16|32|64|128|size)$/.test(name) || /^NonZero/.test(name)) input = "int";
  else if (name === "f32" || name === "f64") input = "float";
  return { text, inner: t, optional, input };
}

function inputFor(p) {
  const ty = parseType(p.type);
  const attrs = { name: p.name, title: p.type, dataset: { input: ty.input } };
  let input;
  if (ty.input === "bool") input = el("input", { ...attrs, type: "checkbox" });
  else if (ty.input === "int") input = el("input", { ...attrs, type: "text", inputmode: "numeric", placeholder: ty.inner });
  else if (ty.input === "float") input = el("input", { ...attrs, type: "text", inputmode: "decimal", placeholder: ty.inner });
  else if (ty.input === "text") input = el("input", { ...attrs, type: "text", placeholder: ty.inner });
  else input = el("textarea", { ...attrs, rows: "2", placeholder: `${ty.inner} as JSON` });
  const none = ty.optional ? el("input", { type: "checkbox", class: "none", name: `${p.name}.none`, title: "None" }) : null;
  return { ty, input, none, row: el("label", {}, el("span", { class: "pname" }, p.name), input,
    none ? el("span", { class: "opt" }, none, " none") : null, el("code", { class: "ptype" }, p.type)) };
}

/** The JSON value of one input, or throws saying what is wrong. */
export function valueOf(name, ty, input, none) {
  if (none && none.checked) return null;
  const raw = input.type === "checkbox" ? input.checked : input.value;
  switch (ty.input) {
    case "bool":
      return raw;
    case "text":
      return raw;
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`${name}: a whole number (${ty.inner})`);
      const v = Number(raw.trim());
      if (!Number.isSafeInteger(v)) throw new Error(`${name}: beyond what JSON numbers hold exactly here`);
      return v;
    }
    case "float": {
      const v = Number(raw.trim());
      if (raw.trim() === "" || !Number.isFinite(v)) throw new Error(`${name}: a number (${ty.inner})`);
      return v;
    }
    default:
      if (raw.trim() === "" && ty.optional) return null;
      try {
        return JSON.parse(raw);
      } catch (e) {
        throw new Error(`${name}: not JSON (${e.message}); type ${ty.inner}`);
      }
  }
}

function form(m, kind) {
  const inputs = m.params.map((p) => [p.name, inputFor(p)]);
  const out = el("pre", { class: "output" });
  const sig = `${m.name}(${m.params.map((p) => `${p.name}: ${p.type}`).join(", ")}) -> ${m.returns}`;
  const f = el(
    "form",
    { class: "call", dataset: { method: m.name, kind } },
    el("h4", {}, el("span", { class: "method" }, m.name), el("span", { class: `kind ${kind}` }, kind)),
    el("code", { class: "sig" }, sig),
    ...inputs.map(([, i]) => i.row),
    el("button", { type: "submit" }, kind),
    out,
  );
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const n = node(Number(document.getElementById("console-node").value));
    out.className = "output pending";
    try {
      const args = {};
      for (const [name, i] of inputs) args[name] = valueOf(name, i.ty, i.input, i.none);
      if (!n) throw new Error("pick a node");
      show(out, await rpc(n, kind, store.session.context, m.name, args), m, n);
    } catch (err) {
      out.className = "output error";
      out.textContent = err.message;
    }
  });
  return f;
}

/** Shows a JSON-RPC answer: the output and delta, or the error with its typed data. */
function show(out, answer, m, n) {
  if (answer.result) {
    out.className = "output ok";
    const delta = answer.result.delta ? `\ndelta ${answer.result.delta}` : "";
    out.textContent = `node ${n.index}: ${JSON.stringify(answer.result.output, null, 2)}${delta}`;
    return;
  }
  const e = answer.error || { code: 0, message: "no result and no error in the answer" };
  out.className = "output error";
  const lines = [`error ${e.code}: ${e.message}`];
  if (e.code === -32003 && e.data) {
    // The app's own error: its kind, code and fields (AppErrorData).
    const declared = abi?.errors?.find((x) => x.name === m.error)?.variants.some((v) => v.name === e.data.kind);
    lines.push(`app error ${e.data.kind} (code ${e.data.code})${declared ? ` of ${m.error}` : ""}`);
    if (e.data.data !== undefined && e.data.data !== null) lines.push(JSON.stringify(e.data.data, null, 2));
  } else if (e.data) {
    lines.push(JSON.stringify(e.data, null, 2));
  }
  out.textContent = lines.join("\n");
}
