// Text arithmetic for the editor, with no DOM and no network: what one input
// event changed, how two versions of a text differ, a three-way merge of the
// user's unsent edits with what others wrote meanwhile, and the body hash the
// app checks (`base`).
//
// Positions here are JavaScript string indexes (UTF-16 code units); the app
// counts Unicode scalar values ("chars"), so `chars()` converts right before
// a call. No edit ever splits a surrogate pair, so every edit is whole chars.

/** One change of a text: at `pos`, `del` is removed and `ins` put in its place. */
export interface Edit {
  pos: number;
  del: string;
  ins: string;
}

/** One call's worth of change, in order: an insert or a delete at `pos`. */
export type Op = { kind: "insert"; pos: number; text: string } | { kind: "delete"; pos: number; text: string };

function isHigh(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLow(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/** How many chars (Unicode scalar values, as the app counts) `s` has. */
export function chars(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (!(isLow(s.charCodeAt(i)) && i > 0 && isHigh(s.charCodeAt(i - 1)))) n++;
  }
  return n;
}

/**
 * The body hash the app's `insert` and `delete` take as `base` (cyrb53 over
 * UTF-16 code units; the Rust twin is `notes::body_hash`, and its tests hold
 * the same values as this module's).
 */
export function bodyHash(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ unit, 2654435761);
    h2 = Math.imul(h2 ^ unit, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** `text` with `op` applied. */
export function applyOp(text: string, op: Op): string {
  return op.kind === "insert"
    ? text.slice(0, op.pos) + op.text + text.slice(op.pos)
    : text.slice(0, op.pos) + text.slice(op.pos + op.text.length);
}

/** The ops of one edit: the delete first, then the insert. */
export function opsOf(e: Edit): Op[] {
  const ops: Op[] = [];
  if (e.del) ops.push({ kind: "delete", pos: e.pos, text: e.del });
  if (e.ins) ops.push({ kind: "insert", pos: e.pos, text: e.ins });
  return ops;
}

/**
 * What one input event did to a textarea holding `before` that now holds
 * `after`, with the caret at `caret` afterwards. Typing, paste, backspace,
 * delete and replacing a selection all leave the caret at the end of what
 * changed, so the text after the caret is kept: that tells which of two
 * equal letters was typed ("a|a" + "a" is an insert at 1, not at 2), which
 * matters when others type next to it.
 */
export function inputEdit(before: string, after: string, caret?: number): Edit | null {
  if (before === after) return null;
  const max = Math.min(before.length, after.length);
  const suffixMax = caret === undefined ? max : Math.max(0, Math.min(max, after.length - caret));
  let suffix = 0;
  while (
    suffix < suffixMax &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  let prefix = 0;
  while (prefix < max - suffix && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  // Never cut a surrogate pair: "👋" → "👍" share their first unit.
  if (prefix > 0 && isHigh(before.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLow(before.charCodeAt(before.length - suffix))) suffix--;
  return {
    pos: prefix,
    del: before.slice(prefix, before.length - suffix),
    ins: after.slice(prefix, after.length - suffix),
  };
}

/**
 * Past this many differing chars `diff` stops looking for the fewest edits
 * and replaces the differing middle whole (the search keeps O(D²) memory).
 */
const MAX_DIFF = 1000;

/** `s` split into chars (a surrogate pair stays one element). */
function charsOf(s: string): string[] {
  return Array.from(s);
}

/**
 * The edits that turn `a` into `b`: as few changed chars as possible (Myers'
 * O(ND) algorithm, on chars), sorted, none touching another. Positions are
 * in `a`.
 */
export function diff(a: string, b: string): Edit[] {
  if (a === b) return [];
  let start = 0;
  const max = Math.min(a.length, b.length);
  while (start < max && a.charCodeAt(start) === b.charCodeAt(start)) start++;
  if (start > 0 && isHigh(a.charCodeAt(start - 1))) start--;
  let end = 0;
  while (end < max - start && a.charCodeAt(a.length - 1 - end) === b.charCodeAt(b.length - 1 - end)) end++;
  if (end > 0 && isLow(a.charCodeAt(a.length - end))) end--;
  const x = charsOf(a.slice(start, a.length - end));
  const y = charsOf(b.slice(start, b.length - end));
  const script = myers(x, y);
  if (script === null) return [{ pos: start, del: x.join(""), ins: y.join("") }];
  // Walk the script, gathering runs of changes into edits.
  const edits: Edit[] = [];
  let pos = start;
  let cur: Edit | null = null;
  for (const step of script) {
    if (step.kind === "=") {
      if (cur) edits.push(cur);
      cur = null;
      pos += step.text.length;
      continue;
    }
    cur ??= { pos, del: "", ins: "" };
    if (step.kind === "-") {
      cur.del += step.text;
      pos += step.text.length;
    } else {
      cur.ins += step.text;
    }
  }
  if (cur) edits.push(cur);
  return edits;
}

type Step = { kind: "=" | "-" | "+"; text: string };

/** Myers' shortest edit script of `x` into `y`, or `null` past `MAX_DIFF` changes. */
function myers(x: string[], y: string[]): Step[] | null {
  const n = x.length;
  const m = y.length;
  // v[k] for diagonal k = i - j: the furthest i reached; trace[d] keeps the
  // v of the rounds before d over the diagonals -d - 1 ..= d + 1.
  const offset = n + m + 1;
  const v = new Int32Array(2 * offset + 1);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= n + m; d++) {
    if (d > MAX_DIFF) return null;
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]);
      let i = down ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let j = i - k;
      while (i < n && j < m && x[i] === y[j]) {
        i++;
        j++;
      }
      v[offset + k] = i;
      if (i >= n && j >= m) return backtrack(trace, x, y, d);
    }
  }
  return null;
}

function backtrack(trace: Int32Array[], x: string[], y: string[], depth: number): Step[] {
  const steps: Step[] = [];
  let i = x.length;
  let j = y.length;
  const equal = (downTo: number) => {
    while (i > downTo) {
      i--;
      j--;
      steps.push({ kind: "=", text: x[i] });
    }
  };
  for (let d = depth; d > 0; d--) {
    const at = (k: number) => trace[d][k + d + 1];
    const k = i - j;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevI = at(prevK);
    equal(down ? prevI : prevI + 1);
    if (down) {
      j--;
      steps.push({ kind: "+", text: y[j] });
    } else {
      i--;
      steps.push({ kind: "-", text: x[i] });
    }
  }
  equal(0);
  return steps.reverse();
}

/** What {@link merge} gives. */
export interface Merged {
  /** The text with both sides' changes. */
  text: string;
  /** The ops that turn `remote` into `text`, each at its position once the earlier ones applied. */
  ops: Op[];
  /** Positions of `local` (a caret, a selection end) where they are in `text`. */
  mapped: number[];
}

/**
 * Three-way merge: `base` is the text both sides started from, `local` has
 * this user's unsent edits, `remote` what the node has now. Every char one
 * side deleted goes, every insertion of either side stays. Where both
 * inserted at one place, the local text comes first, and a position of
 * `local` at a place where only the remote side inserted stays before that
 * text: the user's caret stays with their own words, so their next
 * keystroke continues them instead of landing inside someone else's.
 */
export function merge(base: string, local: string, remote: string, positions: number[] = []): Merged {
  const n = base.length;
  const delL = new Uint8Array(n);
  const delR = new Uint8Array(n);
  const insL = new Map<number, string>();
  const insR = new Map<number, string>();
  for (const e of diff(base, local)) {
    delL.fill(1, e.pos, e.pos + e.del.length);
    if (e.ins) insL.set(e.pos, e.ins);
  }
  for (const e of diff(base, remote)) {
    delR.fill(1, e.pos, e.pos + e.del.length);
    if (e.ins) insR.set(e.pos, e.ins);
  }
  let out = "";
  const ops: Op[] = [];
  const mapped: number[] = positions.map(() => -1);
  let lp = 0; // how much of `local` is behind us
  // Positions of `local` up to `lp + len` land at `out.length + (p - lp)`.
  const place = (len: number) => {
    positions.forEach((p, i) => {
      if (mapped[i] < 0 && p >= lp && p <= lp + len) mapped[i] = out.length + (p - lp);
    });
  };
  for (let i = 0; i <= n; i++) {
    const mine = insL.get(i);
    if (mine) {
      place(mine.length);
      ops.push({ kind: "insert", pos: out.length, text: mine });
      out += mine;
      lp += mine.length;
    }
    place(0);
    const theirs = insR.get(i);
    if (theirs) out += theirs;
    if (i === n) break;
    const ch = base[i];
    if (!delL[i] && !delR[i]) {
      out += ch;
      lp += 1;
    } else if (delL[i] && !delR[i]) {
      // The remote text still has it: delete it there.
      const last = ops[ops.length - 1];
      if (last && last.kind === "delete" && last.pos === out.length) last.text += ch;
      else ops.push({ kind: "delete", pos: out.length, text: ch });
    } else if (!delL[i]) {
      lp += 1; // deleted by the remote side only: it was in `local`
    }
  }
  positions.forEach((p, i) => {
    if (mapped[i] < 0) mapped[i] = Math.min(out.length, Math.max(0, out.length - (local.length - p)));
  });
  return { text: out, ops, mapped };
}

