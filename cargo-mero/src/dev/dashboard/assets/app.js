// The dashboard's entry point: reads the session key from the URL fragment,
// loads `/session`, follows `/session/events`, and starts each panel.

import { getSession, sessionEvents, sessionKey } from "./api.js";
import { el, replace, short } from "./dom.js";
import { apply, setSession, store } from "./store.js";
import * as nodesPanel from "./nodes.js";
import * as faults from "./faults.js";
import * as events from "./events.js";
import * as state from "./state.js";
import * as dag from "./dag.js";
import * as callConsole from "./console.js";
import * as reloads from "./reloads.js";

const link = document.getElementById("link");

function fatal(message) {
  link.className = "down";
  link.textContent = "not connected";
  replace(document.getElementById("fatal"), el("p", {}, message));
  document.getElementById("fatal").hidden = false;
}

function header() {
  const s = store.session;
  replace(document.getElementById("session"), `context ${short(s.context)} · app ${short(s.app)}`);
  document.getElementById("session").title = `context ${s.context}\napp ${s.app}`;
}

async function main() {
  const key = sessionKey();
  if (!key) {
    fatal("This page needs the session key: open the dashboard URL that `cargo mero dev` printed (it ends in #key=…).");
    return;
  }
  store.key = key;
  try {
    setSession(await getSession(key));
  } catch (e) {
    fatal(e.message);
    return;
  }
  header();
  for (const panel of [nodesPanel, faults, events, state, dag, callConsole, reloads]) panel.start();
  let broken = false;
  sessionEvents(
    key,
    (ev) => {
      apply(ev);
      if (ev.type === "reload") header();
    },
    async () => {
      link.className = "up";
      link.textContent = "live";
      // Events missed while the stream was down: take the whole view again.
      if (broken) {
        broken = false;
        try {
          setSession(await getSession(key));
          header();
        } catch (e) {
          console.warn(e);
        }
      }
    },
    () => {
      broken = true;
      link.className = "down";
      link.textContent = "session gone? reconnecting…";
    },
  );
}

main();
