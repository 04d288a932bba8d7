// The collaborative editor's engine: keeps a textarea, this user's unsent
// edits and the node's copy of one document in step. No DOM beyond the
// `Surface` it is given and no network beyond its `Backend`, so the tests in
// test/ drive it with fakes.
//
// - Every input event becomes ops (a delete, an insert, or both for a
//   replaced selection) on a queue; the textarea already shows them.
// - The queue goes to the node in order, one request at a time (a JSON-RPC
//   batch of the queued ops), each op carrying `base`, the hash of the text
//   its position was computed in. The node refuses an op whose base is not
//   its body: a peer's edit arrived first and the position would land in the
//   wrong place.
// - On a refusal, and whenever the node says the document changed, the
//   editor reads the body, merges it with its unsent edits (the merge keeps
//   both sides' words and puts the caret back beside the user's own text),
//   and sends what is still missing.
// - Whitespace typed last waits (`hold`) for the next keystroke and goes
//   with it. A body read back carries no authorship: when someone else
//   typed at the caret too, "X␣" + "␣sigma" could be either space first,
//   and a caret put after the wrong space would glue the next word to
//   theirs. A space still unsent is known to be this user's, and the merge
//   keeps the caret right after it.

import { type Op, applyOp, bodyHash, chars, inputEdit, merge, opsOf } from "./text";

/** An op as the app's `insert` and `delete` take it: chars, not UTF-16 units. */
export type WireOp =
  | { kind: "insert"; pos: number; text: string; base: number }
  | { kind: "delete"; pos: number; len: number; expect: string; base: number };

/** How one op of a batch went. */
export type OpResult = "ok" | "stale" | "retry" | { failed: string };

/** What the editor needs from the node. */
export interface Backend {
  /** The document's body now. */
  read(): Promise<string>;
  /**
   * Runs the ops in order, one result each: `stale` for a refused base (or a
   * position the node's text no longer has), `retry` when the node could not
   * be asked, `failed` for anything else. After the first op that is not
   * `ok` the rest are `stale` or worse.
   */
  apply(ops: WireOp[]): Promise<OpResult[]>;
}

/** The text field the user types into (a textarea). */
export interface Surface {
  value: string;
  readonly selectionStart: number;
  readonly selectionEnd: number;
  setSelectionRange(start: number, end: number): void;
  /** Whether it has the focus, i.e. whether its selection is the user's. */
  readonly focused: boolean;
}

/** Where the editor is, for the page to show. */
export interface EditorStatus {
  /** Ops typed but not yet accepted by the node. */
  unsent: number;
  /** Why the last attempt failed, while it keeps failing. */
  problem?: string;
}

/** Most ops in one request. */
const MAX_BATCH = 64;

/** Refusals in a row with nothing new to read before the edits are given up. */
const MAX_STALE = 3;

/** How long trailing whitespace waits for the next keystroke before it goes alone (ms). */
export const HOLD_MS = 400;

/** The editor of one document. */
export class Editor {
  /** The node's body as last confirmed. */
  #known: string;
  /** Edits on top of `#known`, in order; the surface shows them. */
  #queue: Op[] = [];
  /** The ops of the request in flight (the head of the queue): never coalesced into. */
  #sending = 0;
  /** What the surface held after the last input or render. */
  #shown: string;
  #composing = false;
  #dirty = false;
  #running = false;
  /** Closed: the surface is no longer this editor's; it only sends what is left. */
  #closed = false;
  #failures = 0;
  #stale = 0;
  #problem: string | undefined;
  #idle: Array<() => void> = [];
  /** Trailing whitespace may go now: its wait ended. */
  #flush = false;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly surface: Surface,
    body: string,
    private readonly onStatus: (s: EditorStatus) => void = () => {},
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    private readonly hold: number = HOLD_MS,
  ) {
    this.#known = body;
    this.#shown = body;
    surface.value = body;
  }

  /** The text the user sees. */
  get text(): string {
    return this.#shown;
  }

  /** Whether every edit is on the node and nothing is waiting to be read. */
  get synced(): boolean {
    return this.#queue.length === 0 && !this.#dirty && !this.#running;
  }

  /** Resolves once the editor has nothing left to send or read. */
  settled(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** The surface changed (an `input` event). */
  input(): void {
    if (this.#composing || this.#closed) return;
    const now = this.surface.value;
    const edit = inputEdit(this.#shown, now, this.surface.selectionEnd);
    this.#shown = now;
    if (!edit) return;
    for (const op of opsOf(edit)) this.#push(op);
    // The wait of trailing whitespace starts at its last keystroke.
    if (this.#holdTimer !== undefined) this.#unhold();
    this.#pump();
  }

  /** An IME composition started: the surface is the IME's until it ends. */
  compositionStart(): void {
    this.#composing = true;
  }

  /** The composition ended: its text is one insert (or a replace), like typing. */
  compositionEnd(): void {
    this.#composing = false;
    this.input();
    this.#pump();
  }

  /** The node says the document changed (an event, a reconnect): read it when idle. */
  changed(): void {
    if (this.#closed) return;
    this.#dirty = true;
    this.#pump();
  }

  /**
   * Lets go of the surface (another document opens in it): what was typed
   * is still sent, held whitespace at once, but nothing is shown any more.
   */
  close(): void {
    this.#closed = true;
    this.#composing = false;
    this.#dirty = false;
    this.#flush = true;
    this.#unhold();
    this.#pump();
  }

  /** Cancels the wait of trailing whitespace. */
  #unhold(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
  }

  /**
   * The ops that may go now: all of the queue, except whitespace that ends
   * it (split off the insert it ends) until its wait is over.
   */
  #ready(): Op[] {
    const q = this.#queue;
    const last = q[q.length - 1];
    const ws = last?.kind === "insert" ? /\s+$/.exec(last.text) : null;
    if (!ws || this.#flush) return q.slice(0, MAX_BATCH);
    if (ws[0].length < last.text.length) {
      const head = last.text.slice(0, -ws[0].length);
      q.splice(q.length - 1, 1, { kind: "insert", pos: last.pos, text: head }, {
        kind: "insert",
        pos: last.pos + head.length,
        text: ws[0],
      });
    }
    if (this.#holdTimer === undefined) {
      this.#holdTimer = setTimeout(() => {
        this.#holdTimer = undefined;
        this.#flush = true;
        this.#pump();
      }, this.hold);
    }
    return q.slice(0, Math.min(q.length - 1, MAX_BATCH));
  }

  /** Appends `op`, joined with the last queued op when it continues it (typing, backspace, delete). */
  #push(op: Op): void {
    const last = this.#queue.length > this.#sending ? this.#queue[this.#queue.length - 1] : undefined;
    if (last && last.kind === "insert" && op.kind === "insert" && op.pos === last.pos + last.text.length) {
      last.text += op.text;
    } else if (last && last.kind === "delete" && op.kind === "delete" && op.pos + op.text.length === last.pos) {
      last.pos = op.pos;
      last.text = op.text + last.text;
    } else if (last && last.kind === "delete" && op.kind === "delete" && op.pos === last.pos) {
      last.text += op.text;
    } else {
      this.#queue.push(op);
    }
  }

  #status(): void {
    if (this.#closed) return;
    this.onStatus({ unsent: this.#queue.length, ...(this.#problem ? { problem: this.#problem } : {}) });
  }

  #wake(): void {
    if (!this.synced) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Runs until nothing is left to send or read; one loop at a time keeps every request in order. */
  #pump(): void {
    if (this.#running) return;
    this.#running = true;
    this.#status();
    void this.#loop().finally(() => {
      this.#running = false;
      this.#sending = 0;
      this.#status();
      // Input may have come while the last step was finishing.
      const more = this.#dirty || (this.#queue.length > 0 && this.#holdTimer === undefined);
      if (!this.#composing && more) this.#pump();
      else this.#wake();
    });
  }

  async #loop(): Promise<void> {
    while (!this.#composing) {
      const batch = this.#queue.length > 0 ? this.#ready() : [];
      if (batch.length > 0) {
        await this.#send(batch);
      } else if (this.#dirty) {
        this.#dirty = false;
        await this.#refresh();
      } else {
        return;
      }
    }
  }

  /** Sends the head of the queue; on a refusal reads and rebases. */
  async #send(batch: Op[]): Promise<void> {
    this.#sending = batch.length;
    const wire: WireOp[] = [];
    let text = this.#known;
    for (const op of batch) {
      const pos = chars(text.slice(0, op.pos));
      const base = bodyHash(text);
      wire.push(
        op.kind === "insert"
          ? { kind: "insert", pos, text: op.text, base }
          : { kind: "delete", pos, len: chars(op.text), expect: op.text, base },
      );
      text = applyOp(text, op);
    }
    let results: OpResult[];
    try {
      results = await this.backend.apply(wire);
    } catch {
      results = ["retry"];
    }
    let done = 0;
    for (const r of results) {
      if (r !== "ok") break;
      this.#known = applyOp(this.#known, batch[done]);
      done++;
    }
    this.#queue.splice(0, done);
    this.#sending = 0;
    if (this.#queue.length === 0) this.#flush = false;
    const first = results[done];
    if (first === undefined || first === "ok") {
      this.#ok();
    } else if (first === "stale") {
      const before = this.#known;
      await this.#refresh();
      if (this.#known !== before) {
        this.#stale = 0;
        this.#ok();
      } else if (++this.#stale >= MAX_STALE) {
        // Refused again and again though the text is what we think: no
        // retry will help, so show the node's text rather than loop.
        this.#discard("the node keeps refusing these edits: they were dropped");
      } else {
        await this.#backoff("the node refused an edit; retrying");
      }
    } else if (first === "retry") {
      await this.#backoff("the node cannot be reached; retrying");
    } else {
      // The app refused the edit for good (the document is gone, say): show
      // the node's text rather than retry forever.
      this.#discard(first.failed);
      await this.#refresh();
    }
  }

  #ok(): void {
    this.#failures = 0;
    this.#problem = undefined;
  }

  /** Drops the unsent edits: the surface shows the node's text again. */
  #discard(problem: string): void {
    this.#problem = problem;
    this.#stale = 0;
    this.#queue = [];
    this.#shown = this.#known;
    if (!this.#closed) this.surface.value = this.#known;
  }

  async #backoff(problem: string): Promise<void> {
    this.#problem = problem;
    this.#status();
    this.#failures++;
    await this.sleep(Math.min(5000, 100 * 2 ** Math.min(this.#failures, 6)));
  }

  /** Reads the body and merges it with the unsent edits. */
  async #refresh(): Promise<void> {
    let fresh: string;
    try {
      fresh = await this.backend.read();
    } catch (e) {
      this.#dirty = true;
      return this.#backoff(`reading the document failed: ${String(e)}`);
    }
    if (this.#composing) {
      // Never touch the surface under an IME; read again when it is done.
      this.#dirty = true;
      return;
    }
    // Typing that happened while the read was out is in the surface.
    if (!this.#closed) this.input();
    if (fresh === this.#known) return;
    const { selectionStart, selectionEnd } = this.#closed ? { selectionStart: 0, selectionEnd: 0 } : this.surface;
    const m = merge(this.#known, this.#shown, fresh, [selectionStart, selectionEnd]);
    this.#known = fresh;
    this.#queue = m.ops;
    const changed = m.text !== this.#shown;
    // What the model says is there, even should the surface normalize it
    // (a textarea turns "\r\n" into "\n"): the next input's diff then
    // stays consistent with the queue.
    this.#shown = m.text;
    if (changed && !this.#closed) {
      const focused = this.surface.focused;
      this.surface.value = m.text;
      if (focused) this.surface.setSelectionRange(m.mapped[0], m.mapped[1]);
    }
  }
}
