// The page's one copy of the session: the view `/session` answered, kept
// current by the session's events, plus what the page polled from each node.
// Modules read it and listen for changes on `bus`; only this module and the
// pollers write it.

export const bus = new EventTarget();

/** Tells listeners of `type` (with `detail`). */
export function emit(type, detail = null) {
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}

/** Calls `f(detail)` on every `type`. */
export function on(type, f) {
  bus.addEventListener(type, (e) => f(e.detail));
}

export const store = {
  key: "",
  /** The `SessionView` (`context`, `app`, `nodes`, `faults`, `reloads`, `lastConverged`). */
  session: null,
  /** Per node index: what the page last polled (`status`, `net`, `sync`, `info`, `down`, `error`). */
  polled: new Map(),
  /** Per node index: when the page first saw it lag the network (ms), for "since". */
  lagSince: new Map(),
};

/** The node views, by index. */
export function nodes() {
  return store.session ? [...store.session.nodes].sort((a, b) => a.index - b.index) : [];
}

/** The node view with this index, or undefined. */
export function node(index) {
  return store.session?.nodes.find((n) => n.index === index);
}

/** Takes a whole `SessionView` (at start, and after the event stream reconnects). */
export function setSession(view) {
  const appChanged = store.session && store.session.app !== view.app;
  store.session = view;
  view.reloads ||= [];
  emit("session");
  if (appChanged) emit("app");
}

/** Applies one `SessionEvent`. */
export function apply(ev) {
  const s = store.session;
  if (!s) return;
  switch (ev.type) {
    case "nodeUp": {
      const i = s.nodes.findIndex((n) => n.index === ev.node.index);
      if (i >= 0) s.nodes[i] = ev.node;
      else s.nodes.push(ev.node);
      emit("nodes");
      emit("nodeUp", ev.node.index);
      break;
    }
    case "nodeDown": {
      const n = node(ev.index);
      if (n) n.alive = false;
      emit("nodes");
      emit("nodeDown", ev);
      break;
    }
    case "faults":
      s.faults = ev.faults;
      emit("faults");
      break;
    case "healed":
      emit("healed", ev);
      break;
    case "converged":
      s.lastConverged = ev;
      emit("converged", ev);
      break;
    case "reload":
      s.reloads.push(ev.reload);
      emit("reload", ev.reload);
      if (ev.reload.ok && ev.reload.app && ev.reload.app !== s.app) {
        s.app = ev.reload.app;
        emit("app");
      }
      break;
    default:
      console.warn("unknown session event", ev.type);
  }
}
