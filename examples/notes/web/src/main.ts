// The notes page: one user of the notes app on one node. It reads where to
// connect from its own URL (`?url=…&context=…&token=…`, which `cargo mero
// dev` prints for every node), lists the documents (search, paging, create,
// rename) and edits one at a time in a textarea whose every keystroke is an
// `insert` or `delete` at a char position (src/editor.ts), never the whole
// text: two people typing in one document at once both keep their words.
import { MeroClient, MeroError } from "@mero/client";
import { APP_HASH, Notes, asNotesEvent, isNotesError } from "./generated/notes";
import { Editor, type OpResult, type Surface, type WireOp } from "./editor";

/** A document as the app's `get` returns it. */
interface Document {
  id: string;
  title: string;
  body: string;
  len: number;
}

/** A document in a listing (`list`, `search`). */
interface Summary {
  id: string;
  title: string;
  len: number;
}

/** A page of `list`. */
interface Page {
  docs: Summary[];
  next: string | null;
}

const PAGE = 20;

const params = new URLSearchParams(location.search);
const context = params.get("context");
const token = params.get("token");
const url = params.get("url") ?? location.origin;

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const whoami = el("whoami");
const status = el("status");
const errorLine = el("error");
const docsList = el<HTMLUListElement>("docs");
const more = el<HTMLButtonElement>("more");
const search = el<HTMLInputElement>("search");
const titleInput = el<HTMLInputElement>("title");
const body = el<HTMLTextAreaElement>("body");
const sync = el("sync");
el("app").textContent = `app ${APP_HASH}`;

/** The member a client token acts as: its `sub` claim. */
function member(jwt: string): string {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sub ?? "?");
  } catch {
    return "?";
  }
}

/** Why a call failed, in words; the app's own errors are typed by the bindings. */
function describe(e: unknown): string {
  if (isNotesError(e)) {
    switch (e.kind) {
      case "NoSuchDoc":
        return `Someone else's node has not sent that document yet, or it never existed (${e.data.doc}).`;
      case "EmptyTitle":
        return "A title needs some text.";
      case "TitleTooLong":
        return `Titles have at most ${e.data.max} characters.`;
      case "ControlCharInTitle":
        return "A title is one line of text.";
      case "BadLimit":
        return `A page holds 1 to ${e.data.max} documents.`;
      case "InsertOutOfRange":
      case "DeleteOutOfRange":
      case "TextChanged":
      case "BodyChanged":
        return "The document changed under the edit; it is being redone on the new text.";
    }
  }
  if (e instanceof MeroError) return `${e.kind}: ${e.message}`;
  return String(e);
}

function showError(e: unknown): void {
  errorLine.textContent = describe(e);
}

/** Errors that mean "the text moved": read it again and rebase. */
const STALE = new Set(["BodyChanged", "TextChanged", "InsertOutOfRange", "DeleteOutOfRange"]);
/** Failures that may pass by themselves. */
const TRANSIENT = new Set(["unreachable", "node_failure", "joining", "timeout", "bad_response"]);

function opResult(e: MeroError): OpResult {
  if (isNotesError(e) && STALE.has(e.kind)) return "stale";
  if (TRANSIENT.has(e.kind)) return "retry";
  return { failed: describe(e) };
}

function textareaSurface(t: HTMLTextAreaElement): Surface {
  return {
    get value() {
      return t.value;
    },
    set value(v: string) {
      t.value = v;
    },
    get selectionStart() {
      return t.selectionStart;
    },
    get selectionEnd() {
      return t.selectionEnd;
    },
    setSelectionRange(start, end) {
      t.setSelectionRange(start, end);
    },
    get focused() {
      return document.activeElement === t;
    },
  };
}

if (!context || !token) {
  whoami.textContent =
    "Open this page with ?context=…&token=… in its URL: `cargo mero dev` prints one for each node.";
} else {
  const node = params.get("node");
  whoami.textContent = `${node ? `node ${node} · ` : ""}member ${member(token).slice(0, 8)}… `;
  whoami.append(status);
  start(new MeroClient({ url, context, token }));
}

function start(client: MeroClient): void {
  const notes = new Notes(client);
  const surface = textareaSurface(body);
  let open: { id: string; editor: Editor } | undefined;
  let cursor: string | null = null;

  // ---- the document list ----

  function item(d: Summary): HTMLLIElement {
    const li = document.createElement("li");
    li.dataset.doc = d.id;
    li.className = d.id === open?.id ? "open" : "";
    const name = document.createElement("span");
    name.textContent = d.title;
    const len = document.createElement("small");
    len.textContent = `${d.len} chars`;
    li.append(name, len);
    li.addEventListener("click", () => openDoc(d.id).catch(showError));
    return li;
  }

  async function listDocs(): Promise<void> {
    const prefix = search.value.trim();
    if (prefix) {
      const found = (await notes.search({ prefix, limit: 50 })) as Summary[];
      docsList.replaceChildren(...found.map(item));
      cursor = null;
    } else {
      const page = (await notes.list({ limit: PAGE })) as Page;
      docsList.replaceChildren(...page.docs.map(item));
      cursor = page.next;
    }
    more.hidden = cursor === null;
  }

  async function moreDocs(): Promise<void> {
    if (cursor === null) return;
    const page = (await notes.list({ after: cursor, limit: PAGE })) as Page;
    docsList.append(...page.docs.map(item));
    cursor = page.next;
    more.hidden = cursor === null;
  }

  let relist: ReturnType<typeof setTimeout> | undefined;
  function listSoon(): void {
    clearTimeout(relist);
    relist = setTimeout(() => listDocs().catch(showError), 50);
  }

  search.addEventListener("input", listSoon);
  more.addEventListener("click", () => moreDocs().catch(showError));
  el<HTMLFormElement>("create").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = el<HTMLInputElement>("new-title");
    errorLine.textContent = "";
    notes
      .create({ title: input.value })
      .then(async (id) => {
        input.value = "";
        await listDocs();
        await openDoc(id);
        body.focus();
      })
      .catch(showError);
  });

  // ---- the open document ----

  function showSync(s: { unsent: number; problem?: string }): void {
    sync.textContent = s.problem ?? (s.unsent > 0 ? `${s.unsent} edits sending…` : "saved");
    sync.className = s.problem ? "problem" : s.unsent > 0 ? "sending" : "saved";
    if (open && s.unsent === 0 && !s.problem && open.editor.synced) sync.dataset.synced = "yes";
    else delete sync.dataset.synced;
  }

  async function openDoc(id: string): Promise<void> {
    const doc = (await notes.get({ doc: id })) as Document;
    open?.editor.close();
    const backend = {
      read: async () => ((await notes.get({ doc: id })) as Document).body,
      apply: async (ops: WireOp[]): Promise<OpResult[]> => {
        let results;
        try {
          results = await client.batch(
            ops.map((op) => {
              const { kind, ...args } = op;
              return { kind: "execute" as const, method: kind, args: { doc: id, ...args } };
            }),
          );
        } catch (e) {
          return ops.map(() => (e instanceof MeroError ? opResult(e) : "retry"));
        }
        return results.map((r) => (r.ok ? "ok" : opResult(r.error)));
      },
    };
    const editor = new Editor(backend, surface, doc.body, (s) => showSync(s));
    open = { id, editor };
    titleInput.value = doc.title;
    titleInput.disabled = false;
    body.disabled = false;
    el("editor").dataset.doc = id;
    history.replaceState(null, "", `#doc=${encodeURIComponent(id)}`);
    for (const li of docsList.querySelectorAll<HTMLLIElement>("li")) {
      li.className = li.dataset.doc === id ? "open" : "";
    }
    showSync({ unsent: 0 });
  }

  body.addEventListener("input", () => open?.editor.input());
  body.addEventListener("compositionstart", () => open?.editor.compositionStart());
  body.addEventListener("compositionend", () => open?.editor.compositionEnd());

  function rename(): void {
    if (!open) return;
    const id = open.id;
    notes
      .rename({ doc: id, title: titleInput.value })
      .then(() => (errorLine.textContent = ""))
      .catch(showError);
  }
  titleInput.addEventListener("change", rename);

  async function refreshTitle(id: string): Promise<void> {
    const doc = (await notes.get({ doc: id })) as Document;
    if (open?.id === id && document.activeElement !== titleInput) titleInput.value = doc.title;
  }

  // ---- live changes ----

  client.subscribe({
    onEvent(item) {
      const ev = asNotesEvent(item);
      if (!ev) return;
      switch (ev.kind) {
        case "Edited": {
          if (ev.data.doc === open?.id) open.editor.changed();
          const len = docsList.querySelector(`li[data-doc="${CSS.escape(ev.data.doc)}"] small`);
          if (len) len.textContent = `${ev.data.len} chars`;
          break;
        }
        case "Renamed":
          if (ev.data.doc === open?.id) refreshTitle(ev.data.doc).catch(showError);
          listSoon();
          break;
        case "Created":
          listSoon();
          break;
      }
    },
    onStatus(s) {
      status.textContent = s;
      status.className = s;
      // Back from a drop: whatever happened meanwhile is in the state.
      if (s === "open") {
        open?.editor.changed();
        listSoon();
      }
    },
  });

  const wanted = new URLSearchParams(location.hash.slice(1)).get("doc") ?? params.get("doc");
  listDocs()
    .then(() => (wanted ? openDoc(wanted) : undefined))
    .catch(showError);
}
