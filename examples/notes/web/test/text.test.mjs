// The editor's text arithmetic: input events to edits, diffs, the three-way
// merge, the body hash the app checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const t = await load("text");

/** A seeded PRNG (mulberry32): the same cases on every run. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ["a", "b", " ", "é", "👋", "\n"];
function randomText(r, max) {
  let s = "";
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

/** A random edit of `s` at char boundaries. */
function randomEdit(r, s) {
  const cs = Array.from(s);
  const at = Math.floor(r() * (cs.length + 1));
  const del = Math.floor(r() * Math.min(3, cs.length - at + 1));
  cs.splice(at, del, ...Array.from(randomText(r, 4)));
  return cs.join("");
}

function apply(text, edits) {
  let out = text;
  for (const e of [...edits].reverse()) out = out.slice(0, e.pos) + e.ins + out.slice(e.pos + e.del.length);
  return out;
}

test("chars count Unicode scalar values, as the app does", () => {
  assert.equal(t.chars("héllo"), 5);
  assert.equal(t.chars("👋"), 1);
  assert.equal(t.chars("a👋b"), 3);
  assert.equal(t.chars(""), 0);
});

test("the body hash is the app's (values from notes::body_hash's tests)", () => {
  assert.equal(t.bodyHash(""), 3338908027751811);
  assert.equal(t.bodyHash("a"), 7929297801672961);
  assert.equal(t.bodyHash("héllo 👋 world"), 6246781059461376);
  assert.equal(t.bodyHash("milk, eggs"), 3234256026456878);
  assert.notEqual(t.bodyHash("ab"), t.bodyHash("ba"));
  assert.ok(Number.isSafeInteger(t.bodyHash("x".repeat(1000))));
});

test("an input event is the one edit the caret tells", () => {
  // Typing "a" before "aa": the caret (1) says where.
  assert.deepEqual(t.inputEdit("aa", "aaa", 1), { pos: 0, del: "", ins: "a" });
  assert.deepEqual(t.inputEdit("aa", "aaa", 3), { pos: 2, del: "", ins: "a" });
  // Backspace after the second "a" of "aab".
  assert.deepEqual(t.inputEdit("aab", "ab", 1), { pos: 1, del: "a", ins: "" });
  // Delete (forward) at the start.
  assert.deepEqual(t.inputEdit("aab", "ab", 0), { pos: 0, del: "a", ins: "" });
  // A selection replaced by typing, and a paste over it.
  assert.deepEqual(t.inputEdit("one two three", "one 2 three", 5), { pos: 4, del: "two", ins: "2" });
  assert.deepEqual(t.inputEdit("x", "xpasted", 7), { pos: 1, del: "", ins: "pasted" });
  // Emoji that share their first UTF-16 unit are replaced whole.
  assert.deepEqual(t.inputEdit("👋", "👍", 2), { pos: 0, del: "👋", ins: "👍" });
  assert.deepEqual(t.inputEdit("a👋", "a", 1), { pos: 1, del: "👋", ins: "" });
  assert.equal(t.inputEdit("same", "same", 2), null);
});

test("input edits rebuild the new text, whatever the caret", () => {
  const r = rng(7);
  for (let i = 0; i < 2000; i++) {
    const a = randomText(r, 12);
    const b = randomEdit(r, a);
    const caret = Math.floor(r() * (b.length + 1));
    const e = t.inputEdit(a, b, caret);
    if (a === b) {
      assert.equal(e, null);
      continue;
    }
    assert.equal(a.slice(0, e.pos) + e.ins + a.slice(e.pos + e.del.length), b, JSON.stringify({ a, b, caret }));
    // Whole chars only.
    assert.ok(!/^[\udc00-\udfff]/.test(a.slice(e.pos)), "starts inside a pair");
    assert.ok(!/^[\udc00-\udfff]/.test(a.slice(e.pos + e.del.length)), "ends inside a pair");
  }
});

test("diffs are minimal edits that rebuild the other text", () => {
  assert.deepEqual(t.diff("abc", "abc"), []);
  assert.deepEqual(t.diff("hello world", "hello big world!"), [
    { pos: 6, del: "", ins: "big " },
    { pos: 11, del: "", ins: "!" },
  ]);
  assert.deepEqual(t.diff("a👋b", "a👍b"), [{ pos: 1, del: "👋", ins: "👍" }]);
  const r = rng(11);
  for (let i = 0; i < 1000; i++) {
    const a = randomText(r, 20);
    let b = a;
    const n = 1 + Math.floor(r() * 4);
    for (let k = 0; k < n; k++) b = randomEdit(r, b);
    const edits = t.diff(a, b);
    assert.equal(apply(a, edits), b, JSON.stringify({ a, b, edits }));
    for (let k = 1; k < edits.length; k++) {
      assert.ok(edits[k].pos > edits[k - 1].pos + edits[k - 1].del.length, "edits touch");
    }
  }
});

test("a long divergence still diffs correctly (as one replace)", () => {
  const a = "x".repeat(3000);
  const b = "y".repeat(3000);
  assert.deepEqual(t.diff(a, b), [{ pos: 0, del: a, ins: b }]);
});

test("a merge keeps both sides' words and the caret with the user's", () => {
  const base = "one two three";
  const local = "one two three four"; // typed at the end
  const remote = "zero one two three"; // someone typed at the start
  const m = t.merge(base, local, remote, [local.length]);
  assert.equal(m.text, "zero one two three four");
  assert.equal(m.mapped[0], m.text.length);
  let replayed = remote;
  for (const op of m.ops) replayed = t.applyOp(replayed, op);
  assert.equal(replayed, m.text);

  // Both typed at one place: the user's own text comes first, the caret
  // stays right after it.
  const same = t.merge("ab", "aXb", "aYb", [2]);
  assert.equal(same.text, "aXYb");
  assert.equal(same.mapped[0], 2);

  // The remote side inserted right at the caret: the caret stays before it.
  const atCaret = t.merge("ab", "ab", "aYb", [1]);
  assert.equal(atCaret.text, "aYb");
  assert.equal(atCaret.mapped[0], 1);
  assert.deepEqual(atCaret.ops, []);

  // A char both deleted goes once; one deleted by one side goes too.
  const dels = t.merge("abcdef", "abdef", "abcf", [2]);
  assert.equal(dels.text, "abf");
  assert.deepEqual(dels.ops, [{ kind: "delete", pos: 2, text: "c" }]);
});

test("merged ops always turn the remote text into the merge", () => {
  const r = rng(3);
  for (let i = 0; i < 1500; i++) {
    const base = randomText(r, 16);
    const local = randomEdit(r, randomEdit(r, base));
    const remote = randomEdit(r, randomEdit(r, base));
    const caret = Math.floor(r() * (local.length + 1));
    const m = t.merge(base, local, remote, [caret]);
    let replayed = remote;
    for (const op of m.ops) replayed = t.applyOp(replayed, op);
    assert.equal(replayed, m.text, JSON.stringify({ base, local, remote }));
    assert.ok(m.mapped[0] >= 0 && m.mapped[0] <= m.text.length);
    // Nothing only one side touched is lost: no edits at all on one side is
    // the other side's text exactly.
    assert.equal(t.merge(base, base, remote).text, remote);
    assert.equal(t.merge(base, local, base).text, local);
  }
});
