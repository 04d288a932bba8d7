// The board page: one member of the task board on one node. It reads where
// to connect from its own URL (`?url=…&context=…&token=…`, which `cargo mero
// dev` prints for every node), shows the columns and their cards, lets the
// member add, move (buttons, or drag and drop), rename, tick off, assign and
// delete cards, set their own profile, and shows what every member does as
// it happens.
import { MeroClient, MeroError } from "@mero/client";
import { APP_HASH, Board, asBoardEvent, isBoardError } from "./generated/board";

/** A member with their profile (`profiles`, a card's assignee). */
interface MemberView {
  member: string;
  name: string;
  colour: string;
}

/** A card as the `board` view shows it. */
interface CardView {
  id: string;
  title: string;
  done: boolean;
  assignee: MemberView | null;
  subtasks: CardView[];
}

/** A column as the `board` view shows it. */
interface ColumnView {
  id: string;
  title: string;
  cards: CardView[];
}

const params = new URLSearchParams(location.search);
const context = params.get("context");
const token = params.get("token");
const url = params.get("url") ?? location.origin;

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

/** A new element with a class, text and children. */
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const { dataset, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset) Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
}

const whoami = el("whoami");
const status = el("status");
const errorLine = el("error");
const columnsEl = el("columns");
const membersEl = el<HTMLUListElement>("members");
const log = el("log");
el("app").textContent = `app ${APP_HASH}`;

/** Says why a call failed; the app's own errors are typed by the bindings. */
function describe(e: unknown): string {
  if (isBoardError(e)) {
    switch (e.kind) {
      case "NoSuchColumn":
      case "NoSuchCard":
        return "Someone deleted that meanwhile.";
      case "NotAColumn":
      case "NotACard":
        return "That is not where a card can go.";
      case "EmptyTitle":
        return "A title needs some text.";
      case "TitleTooLong":
        return `Titles have at most ${e.data.max} characters.`;
      case "IntoItself":
        return "A card cannot go under itself.";
      case "BadIndex":
        return "That place is past the end; try again.";
      case "EmptyName":
        return "Your name needs some text.";
      case "NameTooLong":
        return `Names have at most ${e.data.max} characters.`;
      case "BadColour":
        return `Colours are #rrggbb, not ${e.data.colour}.`;
      case "NoProfile":
        return "Only members with a profile can be assigned a card.";
      case "NotYourProfile":
        return "You can only edit your own profile.";
    }
  }
  if (e instanceof MeroError) return `${e.kind}: ${e.message}`;
  return String(e);
}

function showError(e: unknown): void {
  errorLine.textContent = describe(e);
}

function logLine(text: string): void {
  const lines = [text, ...(log.textContent ?? "").split("\n").filter(Boolean)];
  log.textContent = lines.slice(0, 12).join("\n");
}

if (!context || !token) {
  whoami.textContent =
    "Open this page with ?context=…&token=… in its URL: `cargo mero dev` prints one for each node.";
} else {
  const node = params.get("node");
  start(new MeroClient({ url, context, token }), node ? `node ${node} · ` : "");
}

function start(client: MeroClient, where: string): void {
  const board = new Board(client);
  let me = "";
  let columns: ColumnView[] = [];
  let members: MemberView[] = [];

  /** Runs a call; a failure shows, success clears the last error. The board re-renders on the state change. */
  function act(call: () => Promise<unknown>): void {
    call()
      .then(() => (errorLine.textContent = ""))
      .catch(showError);
  }

  // ---- rendering ----

  /** The titles being renamed, by key, with what is typed so far: they survive re-renders. */
  const editing = new Map<string, string>();

  /** A title that turns into an input on ✎ (Enter saves, Escape cancels). */
  function editable(key: string, title: string, save: (t: string) => Promise<unknown>): HTMLElement {
    const span = h("span", { className: "title", textContent: title });
    const edit = h("button", { className: "icon", title: "Rename", textContent: "✎", type: "button" });
    const wrap = h("span", { className: "editable" });
    const input = () => {
      const i = h("input", { type: "text", value: editing.get(key) ?? title, dataset: { key } });
      i.addEventListener("input", () => editing.set(key, i.value));
      i.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") act(() => save(i.value));
        if (ev.key === "Enter" || ev.key === "Escape") {
          editing.delete(key);
          wrap.replaceChildren(span, edit);
        }
      });
      return i;
    };
    edit.addEventListener("click", () => {
      editing.set(key, title);
      const i = input();
      wrap.replaceChildren(i);
      i.focus();
      i.select();
    });
    if (editing.has(key)) wrap.append(input());
    else wrap.append(span, edit);
    return wrap;
  }

  function memberChip(m: MemberView): HTMLElement {
    const dot = h("span", { className: "dot" });
    dot.style.background = m.colour;
    return h("span", { className: "chip", title: m.member }, dot, m.member === me ? `${m.name} (you)` : m.name);
  }

  /**
   * A card: `column` is the index of its column, `parent` where it sits (the
   * column, or the card it is a sub-task of), `index` its place among the
   * `siblings` there.
   */
  function cardEl(card: CardView, column: number, parent: object, index: number, siblings: number): HTMLElement {
    const top = "column" in parent;
    const done = h("input", { type: "checkbox", checked: card.done, title: "Done" });
    done.addEventListener("change", () => act(() => board.set_done({ card: card.id, done: done.checked })));
    const button = (label: string, title: string, onClick: () => Promise<unknown>, disabled = false) => {
      const b = h("button", { className: "icon", textContent: label, title, type: "button", disabled });
      b.addEventListener("click", () => act(onClick));
      return b;
    };
    const to = (c: number) => ({ column: columns[c].id });
    const mine = card.assignee?.member === me;
    const tools = h("span", { className: "tools" });
    if (top) {
      tools.append(button("←", "Move to the previous column", () => board.move_card({ card: card.id, to: to(column - 1) }), column === 0));
    }
    tools.append(
      button("↑", "Move up", () => board.move_card({ card: card.id, to: parent, index: index - 1 }), index === 0),
      button("↓", "Move down", () => board.move_card({ card: card.id, to: parent, index: index + 1 }), index === siblings - 1),
    );
    if (top) {
      tools.append(
        button("→", "Move to the next column", () => board.move_card({ card: card.id, to: to(column + 1) }), column === columns.length - 1),
      );
    }
    tools.append(
      button(mine ? "⊖" : "☺", mine ? "Unassign" : "Assign to me", () =>
        board.assign({ card: card.id, member: mine ? null : me }),
      ),
      button("✕", "Delete the card and its sub-tasks", () => board.delete_card({ card: card.id })),
    );
    const sub = h("input", { type: "text", placeholder: "Add a sub-task", dataset: { key: `sub:${card.id}` } });
    const addSub = h("form", { className: "add sub" }, sub, h("button", { type: "submit", textContent: "+" }));
    addSub.addEventListener("submit", (ev) => {
      ev.preventDefault();
      board
        .add_card({ to: { card: card.id }, title: sub.value })
        .then(() => {
          sub.value = "";
          errorLine.textContent = "";
        })
        .catch(showError);
    });
    const li = h(
      "li",
      { className: card.done ? "card done" : "card", draggable: true, dataset: { card: card.id } },
      h("div", { className: "row" }, done, editable(`card:${card.id}`, card.title, (t) => board.rename_card({ card: card.id, title: t }))),
      h("div", { className: "row meta" }, card.assignee ? memberChip(card.assignee) : "", tools),
    );
    const here = { card: card.id };
    if (card.subtasks.length) {
      li.append(
        h("ul", { className: "subtasks" }, ...card.subtasks.map((s, i) => cardEl(s, column, here, i, card.subtasks.length))),
      );
    }
    // Sub-tasks of sub-tasks would be allowed, but one level is a board.
    if (top) li.append(addSub);
    li.addEventListener("dragstart", (ev) => {
      ev.stopPropagation();
      ev.dataTransfer?.setData("text/x-card", card.id);
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", () => li.classList.remove("dragging"));
    return li;
  }

  /** Where among `list`'s cards a drop at height `y` goes. */
  function dropIndex(list: HTMLElement, y: number, dragged: string): number {
    const cards = [...list.querySelectorAll<HTMLElement>(":scope > li.card")].filter((c) => c.dataset.card !== dragged);
    const i = cards.findIndex((c) => {
      const r = c.getBoundingClientRect();
      return y < r.top + r.height / 2;
    });
    return i < 0 ? cards.length : i;
  }

  function columnEl(col: ColumnView, c: number): HTMLElement {
    const list = h("ul", { className: "cards", dataset: { column: col.id } }, ...col.cards.map((card, i) => cardEl(card, c, { column: col.id }, i, col.cards.length)));
    list.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      list.classList.add("over");
    });
    list.addEventListener("dragleave", () => list.classList.remove("over"));
    list.addEventListener("drop", (ev) => {
      ev.preventDefault();
      list.classList.remove("over");
      const card = ev.dataTransfer?.getData("text/x-card");
      if (card) act(() => board.move_card({ card, to: { column: col.id }, index: dropIndex(list, ev.clientY, card) }));
    });
    const input = h("input", { type: "text", placeholder: "Add a card", dataset: { key: `add:${col.id}` } });
    const add = h("form", { className: "add new-card" }, input, h("button", { type: "submit", textContent: "Add" }));
    add.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const title = input.value;
      board
        .add_card({ to: { column: col.id }, title })
        .then(() => {
          input.value = "";
          errorLine.textContent = "";
        })
        .catch(showError);
    });
    const move = (label: string, title: string, index: number, disabled: boolean) => {
      const b = h("button", { className: "icon", textContent: label, title, type: "button", disabled });
      b.addEventListener("click", () => act(() => board.move_column({ column: col.id, index })));
      return b;
    };
    const remove = h("button", { className: "icon", textContent: "✕", title: "Delete the column and its cards", type: "button" });
    remove.addEventListener("click", () => act(() => board.delete_column({ column: col.id })));
    const done = col.cards.filter((k) => k.done).length;
    return h(
      "section",
      { className: "column", dataset: { column: col.id } },
      h(
        "header",
        {},
        editable(`column:${col.id}`, col.title, (t) => board.rename_column({ column: col.id, title: t })),
        h("small", { textContent: `${done}/${col.cards.length}` }),
        h("span", { className: "tools" }, move("←", "Move left", c - 1, c === 0), move("→", "Move right", c + 1, c === columns.length - 1), remove),
      ),
      list,
      add,
    );
  }

  /** Re-renders, keeping what the member is typing (and where) across it. */
  function paint(): void {
    const typed = new Map<string, string>();
    for (const i of document.querySelectorAll<HTMLInputElement>("#columns input[data-key]")) typed.set(i.dataset.key!, i.value);
    const active = document.activeElement as HTMLInputElement | null;
    const focus = active?.dataset?.key;
    const sel = focus ? [active!.selectionStart, active!.selectionEnd] : null;
    columnsEl.replaceChildren(...columns.map(columnEl));
    el("empty").hidden = columns.length > 0;
    for (const [key, value] of typed) {
      const i = columnsEl.querySelector<HTMLInputElement>(`input[data-key="${CSS.escape(key)}"]`);
      if (i) i.value = value;
    }
    const again = focus ? columnsEl.querySelector<HTMLInputElement>(`input[data-key="${CSS.escape(focus)}"]`) : null;
    if (again && sel) {
      again.focus();
      again.setSelectionRange(sel[0], sel[1]);
    }
    membersEl.replaceChildren(...members.map((m) => h("li", { dataset: { member: m.member } }, memberChip(m))));
    const mine = members.find((m) => m.member === me);
    const name = el<HTMLInputElement>("name");
    if (mine && document.activeElement !== name && !name.value) {
      name.value = mine.name;
      el<HTMLInputElement>("colour").value = mine.colour;
    }
  }

  async function load(): Promise<void> {
    const [b, p] = await Promise.all([board.board(), board.profiles()]);
    columns = b as ColumnView[];
    members = p as MemberView[];
    paint();
  }

  let pending: ReturnType<typeof setTimeout> | undefined;
  function reload(): void {
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(showError), 30);
  }

  // ---- forms ----

  el<HTMLFormElement>("profile").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = el<HTMLInputElement>("name").value;
    const colour = el<HTMLInputElement>("colour").value;
    act(() => board.set_profile({ name, colour }));
  });
  el<HTMLFormElement>("add-column").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = el<HTMLInputElement>("column-title");
    board
      .add_column({ title: input.value })
      .then(() => {
        input.value = "";
        errorLine.textContent = "";
      })
      .catch(showError);
  });
  el("starter").addEventListener("click", () =>
    act(async () => {
      for (const title of ["To do", "Doing", "Done"]) await board.add_column({ title });
    }),
  );

  // ---- live changes ----

  const titleOf = (id: string) => {
    for (const col of columns) {
      const stack = [...col.cards];
      for (let c = stack.pop(); c; c = stack.pop()) {
        if (c.id === id) return `“${c.title}”`;
        stack.push(...c.subtasks);
      }
      if (col.id === id) return `“${col.title}”`;
    }
    return id;
  };
  client.subscribe({
    onEvent(item) {
      const ev = asBoardEvent(item);
      if (!ev) return;
      const who = item.local ? "" : " (from another node)";
      switch (ev.kind) {
        case "CardCreated":
          logLine(`added “${ev.data.title}” to ${titleOf(ev.data.parent)}${who}`);
          break;
        case "CardMoved":
          logLine(`moved ${titleOf(ev.data.card)} to ${titleOf(ev.data.parent)}${who}`);
          break;
        case "CardDeleted":
          logLine(`deleted ${titleOf(ev.data.card)}${ev.data.removed > 1 ? ` and ${ev.data.removed - 1} sub-tasks` : ""}${who}`);
          break;
      }
      reload();
    },
    // Renames, ticks, profiles and columns have no events: every change of
    // state, anyone's, re-reads the board.
    onState() {
      reload();
    },
    onStatus(s) {
      status.textContent = s;
      status.className = s;
      if (s === "open") reload();
    },
  });
  board
    .whoami()
    .then((m) => {
      me = m;
      el("who").textContent = `${where}member ${m.slice(0, 8)}…`;
      return load();
    })
    .catch(showError);
}
