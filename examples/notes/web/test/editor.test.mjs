// The editor against a fake node: edits go out in order with the hash of the
// text they were computed in, a stale one is refused, and the editor rebases
// on what the node has. Two users and a peer that edits the node's text
// behind their backs (as merged deltas do) all keep every word.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const { Editor } = await load("editor");
const { bodyHash } = await load("text");

function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** UTF-16 index of char position `pos` in `s`. */
function unitIndex(s, pos) {
  return Array.from(s).slice(0, pos).join("").length;
}

/** A node holding one document body, as the notes app checks `base`. */
class FakeNode {
  constructor(text, r) {
    this.text = text;
    this.r = r;
    this.calls = [];
    this.refused = 0;
    this.peerWords = [];
    this.peer = true;
  }
  async delay() {
    await new Promise((res) => setTimeout(res, Math.floor(this.r() * 3)));
    // Sometimes a peer's edit is merged meanwhile: " word" at the end of a
    // word between "start" and "end", away from where the users type (two
    // people typing at one place is the browser test's, on the real CRDT).
    if (this.peer && this.r() < 0.15) this.peerEdit();
  }
  peerEdit() {
    const ends = [];
    const from = this.text.indexOf("start");
    const to = this.text.indexOf(" end");
    for (let i = from; i <= to; i++) if (this.text[i] === " ") ends.push(i);
    const at = ends[Math.floor(this.r() * ends.length)];
    const word = `peer${this.peerWords.length}`;
    this.peerWords.push(word);
    this.text = this.text.slice(0, at) + " " + word + this.text.slice(at);
  }
  backend() {
    return {
      read: async () => {
        await this.delay();
        return this.text;
      },
      apply: async (ops) => {
        await this.delay();
        this.calls.push(ops.length);
        const out = [];
        for (const op of ops) {
          if (out.some((r) => r !== "ok") || op.base !== bodyHash(this.text)) {
            this.refused++;
            out.push("stale");
            continue;
          }
          const at = unitIndex(this.text, op.pos);
          if (op.kind === "insert") {
            this.text = this.text.slice(0, at) + op.text + this.text.slice(at);
          } else {
            const end = unitIndex(this.text, op.pos + op.len);
            assert.equal(this.text.slice(at, end), op.expect);
            this.text = this.text.slice(0, at) + this.text.slice(end);
          }
          out.push("ok");
        }
        return out;
      },
    };
  }
}

/** A textarea: assigning the value puts the caret at the end, as browsers do. */
class FakeSurface {
  constructor() {
    this.v = "";
    this.selectionStart = 0;
    this.selectionEnd = 0;
    this.focused = true;
  }
  get value() {
    return this.v;
  }
  set value(v) {
    this.v = v;
    this.selectionStart = this.selectionEnd = v.length;
  }
  setSelectionRange(a, b) {
    this.selectionStart = a;
    this.selectionEnd = b;
  }
  /** What a keystroke does: replace the selection, caret after. */
  type(s) {
    const v = this.v;
    this.v = v.slice(0, this.selectionStart) + s + v.slice(this.selectionEnd);
    this.selectionStart = this.selectionEnd = this.selectionStart + s.length;
  }
  backspace() {
    if (this.selectionStart === this.selectionEnd && this.selectionStart > 0) {
      const cut = /[\udc00-\udfff]/.test(this.v[this.selectionStart - 1]) ? 2 : 1;
      this.selectionStart -= cut;
    }
    this.type("");
  }
}

const tick = () => new Promise((res) => setTimeout(res, 0));

test("keystrokes go out as ordered inserts and deletes with their base", async () => {
  const node = new FakeNode("hello", rng(1));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "hello", () => {}, async () => {}, 5);
  assert.equal(s.value, "hello");
  s.setSelectionRange(5, 5);
  for (const ch of " wörld👋") {
    s.type(ch);
    e.input();
  }
  s.backspace();
  e.input();
  s.setSelectionRange(0, 5); // select "hello", type over it
  s.type("Hi");
  e.input();
  await e.settled();
  assert.equal(node.text, "Hi wörld");
  assert.equal(e.text, "Hi wörld");
  assert.equal(node.refused, 0);
  // Typing while a call is out is joined into one insert.
  assert.ok(node.calls.length < 8, `${node.calls.length} calls`);
});

test("a stale edit is refused, rebased on the node's text and placed where it was typed", async () => {
  const node = new FakeNode("one two", rng(2));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "one two", () => {}, async () => {}, 5);
  // A peer's edit reached the node; this editor has not read it yet.
  node.text = "zero one two";
  s.setSelectionRange(7, 7);
  s.type(" three");
  e.input();
  await e.settled();
  assert.equal(node.refused, 1);
  assert.equal(node.text, "zero one two three");
  assert.equal(s.value, "zero one two three");
  assert.equal(s.selectionEnd, s.value.length, "the caret stays after the user's text");
});

test("a remote change shows, the caret keeps its place", async () => {
  const node = new FakeNode("abc def", rng(3));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "abc def", () => {}, async () => {}, 5);
  s.setSelectionRange(4, 4); // before "def"
  node.text = "xx abc def";
  e.changed();
  await e.settled();
  assert.equal(s.value, "xx abc def");
  assert.equal(s.selectionStart, 7);
  assert.equal(s.selectionEnd, 7);
});

test("whitespace typed last waits for the next keystroke, so words typed at one place stay apart", async () => {
  const node = new FakeNode("X", rng(6));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "X", () => {}, async () => {}, 50);
  s.setSelectionRange(1, 1);
  s.type(" ");
  e.input();
  await tick();
  assert.equal(node.text, "X", "the space waits");
  // Someone else typed at the same place meanwhile; the editor reads it.
  node.text = "X sigma ";
  e.changed();
  await tick();
  assert.equal(s.value, "X  sigma ");
  assert.equal(s.selectionEnd, 2, "the caret stays after the user's own space");
  s.type("k");
  e.input();
  await e.settled();
  assert.equal(node.text, "X k sigma ");
  // Alone, it goes once its wait is over.
  s.setSelectionRange(s.value.length, s.value.length);
  s.type("\n");
  e.input();
  await e.settled();
  assert.equal(node.text, "X k sigma \n");
});

test("a composition is one edit at its end, and remote text waits for it", async () => {
  const node = new FakeNode("", rng(4));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "", () => {}, async () => {}, 5);
  e.compositionStart();
  s.type("ni");
  e.input();
  node.text = "peer ";
  e.changed();
  await tick();
  assert.equal(s.value, "ni", "the IME's text is left alone");
  s.setSelectionRange(0, 2);
  s.type("你");
  e.compositionEnd();
  await e.settled();
  assert.equal(node.text, "你peer ");
  assert.equal(s.value, "你peer ");
});

test("closing lets go of the surface but still sends what was typed", async () => {
  const node = new FakeNode("ab", rng(7));
  node.delay = async () => {};
  const s = new FakeSurface();
  const e = new Editor(node.backend(), s, "ab", () => {}, async () => {}, 10_000);
  s.setSelectionRange(2, 2);
  s.type("c ");
  e.input();
  node.text = "xab"; // a peer's edit: the send is refused and rebased
  e.close();
  s.value = "another document";
  await e.settled();
  assert.equal(node.text, "xabc ", "the held space went at once");
  assert.equal(s.value, "another document", "the surface is left alone");
});

test("edits the node refuses for good are dropped, not retried forever", async () => {
  const node = new FakeNode("abc", rng(5));
  const backend = {
    read: async () => "abc",
    apply: async (ops) => ops.map(() => ({ failed: "no such document" })),
  };
  const statuses = [];
  const s = new FakeSurface();
  const e = new Editor(backend, s, "abc", (st) => statuses.push(st), async () => {}, 5);
  s.type("d");
  e.input();
  await e.settled();
  assert.equal(s.value, "abc");
  assert.ok(statuses.some((st) => st.problem === "no such document"));
  void node;
});

test("two users and a peer typing at once all keep every word", async () => {
  for (let seed = 1; seed <= 30; seed++) {
    const r = rng(seed);
    const node = new FakeNode("start end", r);
    const users = [0, 1].map(() => {
      const s = new FakeSurface();
      const e = new Editor(node.backend(), s, node.text, () => {}, async () => tick(), 5);
      return { s, e };
    });
    users[0].s.setSelectionRange(9, 9); // at the end
    users[1].s.setSelectionRange(0, 0); // at the start
    const typed = [[], []];
    const typing = users.map(async ({ s, e }, u) => {
      for (let w = 0; w < 6; w++) {
        const word = `u${u}w${w}${"xyz".slice(0, w % 3)}`;
        typed[u].push(word);
        // A typo and its backspace now and then.
        const text = u === 0 ? ` ${word}` : `${word} `;
        for (const ch of text) {
          s.type(ch);
          e.input();
          if (r() < 0.1) {
            s.type("#");
            e.input();
            await tick();
            s.backspace();
            e.input();
          }
          if (r() < 0.5) await tick();
        }
        // The other user's edits arrive as events.
        users[1 - u].e.changed();
      }
    });
    await Promise.all(typing);
    for (const { e } of users) e.changed();
    await Promise.all(users.map(({ e }) => e.settled()));
    // The peer stops; a last read brings its last edits.
    node.peer = false;
    for (const { e } of users) e.changed();
    await Promise.all(users.map(({ e }) => e.settled()));
    const words = node.text.split(/\s+/).filter(Boolean);
    for (const w of [...typed[0], ...typed[1], ...node.peerWords, "start", "end"]) {
      assert.ok(words.includes(w), `seed ${seed}: "${w}" is missing from ${JSON.stringify(node.text)}`);
    }
    assert.ok(!node.text.includes("#"), `seed ${seed}: a typo survived: ${node.text}`);
    for (const { s, e } of users) {
      assert.equal(s.value, node.text, `seed ${seed}`);
      assert.equal(e.text, node.text, `seed ${seed}`);
    }
  }
});
