// Commands to the session (`POST /control`): the network bar (heal,
// add-node), the answer line, and the banner with the last convergence
// after a heal. The per-node buttons live on the cards (nodes.js) and call
// `send`.

import { control } from "./api.js";
import { clock, el, replace } from "./dom.js";
import { on, store } from "./store.js";

/** Sends one `ControlRequest` and shows the answer. */
export async function send(command) {
  const msg = document.getElementById("control-msg");
  msg.className = "pending";
  msg.textContent = `${command.command}…`;
  try {
    const answer = await control(store.key, command);
    msg.className = answer.ok ? "ok" : "error";
    msg.textContent = answer.message || (answer.ok ? "done" : "refused");
    // The banner follows the `healed` and `converged` events alone: after
    // a heal among nodes that never diverged, `converged` can arrive before
    // this answer does.
    return answer;
  } catch (e) {
    msg.className = "error";
    msg.textContent = e.message;
    return null;
  }
}

function waiting() {
  const b = document.getElementById("banner");
  b.hidden = false;
  b.className = "waiting";
  b.textContent = "healed: waiting for the nodes to converge…";
}

function converged(c) {
  if (!c) return;
  const b = document.getElementById("banner");
  b.hidden = false;
  b.className = "converged";
  replace(
    b,
    el("strong", {}, `converged ${Math.round(c.tookMs)} ms after the heal`),
    ` (healed at ${clock(c.healedAtMs)}, last head change at ${clock(c.convergedAtMs)})`,
  );
}

/** Wires the network bar and the banner. */
export function start() {
  document.getElementById("heal").addEventListener("click", () => send({ command: "heal" }));
  document.getElementById("add-node").addEventListener("click", () => send({ command: "add-node" }));
  on("healed", waiting);
  on("converged", converged);
  on("session", () => converged(store.session.lastConverged));
}
