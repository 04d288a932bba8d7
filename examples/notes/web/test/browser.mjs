// Two users of the notes page on two nodes, in headless Chromium: one
// creates a document, the other opens it from the live list; both type into
// it at the same time, at different places and at the same place, with
// typos, backspace, a replaced selection and a paste; both end with the same
// text holding every word. Then it times 200 keystrokes on page 1 until page 2
// shows each of them.
//
//   node test/browser.mjs <page URL of node 1> <page URL of node 2>
//
// (../../../web-kit/two-pages.mjs says what it needs and prints.)
import { expect, twoPages } from "../../../web-kit/two-pages.mjs";

const KEYSTROKES = Number(process.env.KEYSTROKES || 200);

/** The body's text on a page. */
const bodyOf = (page) => page.$eval("#body", (t) => t.value);

/** Puts the caret of `page` at `pos` (default: the end) in the body. */
async function caret(page, pos) {
  await page.$eval("#body", (t, p) => {
    t.focus();
    const at = p ?? t.value.length;
    t.setSelectionRange(at, at);
  }, pos ?? null);
}

/** Waits until both pages show the same text with nothing left to send, and it holds a while. */
async function settle(pages, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let same = 0;
  for (;;) {
    const texts = await Promise.all(pages.map(bodyOf));
    const synced = await Promise.all(pages.map((p) => p.$eval("#sync", (s) => s.dataset.synced === "yes")));
    same = texts.every((t) => t === texts[0]) && synced.every(Boolean) ? same + 1 : 0;
    if (same >= 5) return texts[0];
    if (Date.now() > deadline) {
      throw new Error(`the pages did not converge: ${JSON.stringify(texts)} (synced: ${synced})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Types `text` on `typist` and records, for each keystroke, its keydown
 * time there and when `viewer` first shows it: the run after a marker that
 * must already be on both pages. Both clocks are the same machine's wall
 * clock (performance.timeOrigin + now()).
 */
async function timeKeystrokes(typist, viewer, marker, text, delay) {
  await viewer.evaluate(
    ({ marker, text }) => {
      const t = document.getElementById("body");
      const seen = [];
      window.__seen = seen;
      const check = () => {
        const v = t.value;
        const at = v.lastIndexOf(marker);
        if (at < 0) return;
        const run = v.slice(at + marker.length);
        let k = 0;
        while (k < run.length && k < text.length && run[k] === text[k]) k++;
        const now = performance.timeOrigin + performance.now();
        while (seen.length < k) seen.push(now);
      };
      // Frames are when a person sees it; the timer catches a page whose
      // frames are throttled.
      const frame = () => {
        check();
        if (seen.length < text.length) requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
      const timer = setInterval(() => {
        check();
        if (seen.length >= text.length) clearInterval(timer);
      }, 4);
    },
    { marker, text },
  );
  await typist.evaluate(() => {
    const typed = [];
    window.__typed = typed;
    document.getElementById("body").addEventListener("keydown", (e) => typed.push(performance.timeOrigin + e.timeStamp));
  });
  await typist.keyboard.type(text, { delay });
  await viewer.waitForFunction((n) => window.__seen.length >= n, text.length, { timeout: 30_000, polling: 50 });
  const typed = await typist.evaluate(() => window.__typed);
  const seen = await viewer.evaluate(() => window.__seen);
  expect(typed.length === text.length, `${typed.length} keydowns recorded for ${text.length} keystrokes`);
  return typed.map((t, i) => seen[i] - t);
}

function percentile(sorted, p) {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

await twoPages("notes", async ({ p1, p2, pages }) => {
  // 1. Page 1 creates a document; page 2 sees it in its list, live, and opens it.
  await p1.fill("#new-title", "Shared notes");
  await p1.click("#create button");
  await p1.waitForSelector("#editor[data-doc]", { timeout: 10_000 });
  const doc = await p1.$eval("#editor", (e) => e.dataset.doc);
  await p2.click(`#docs li[data-doc="${doc}"]`, { timeout: 10_000 });
  await p2.waitForSelector(`#editor[data-doc="${doc}"]`, { timeout: 10_000 });
  expect((await p2.inputValue("#title")) === "Shared notes", "page 2 shows another title");
  console.log(`ok: page 1 created ${doc}, page 2 opened it from its list`);

  // 2. Typing on page 1 shows on page 2, each keystroke within 1 s.
  await caret(p1);
  await p1.keyboard.type("one two three", { delay: 20 });
  await settle(pages);
  const probe = await timeKeystrokes(p1, p2, "three", "!?!", 150);
  expect(probe.every((ms) => ms < 1000), `a keystroke took ${Math.max(...probe).toFixed(0)} ms to show on page 2`);
  for (let i = 0; i < 3; i++) await p1.keyboard.press("Backspace");
  console.log(`ok: keystrokes on page 1 showed on page 2 in ${probe.map((ms) => ms.toFixed(0)).join(", ")} ms`);

  // 3. Both type at once at different places: page 1 at the end (with a
  //    typo fixed by backspace), page 2 at the start, then page 2 replaces a
  //    selected word and pastes.
  await settle(pages);
  await caret(p1);
  await caret(p2, 0);
  await Promise.all([
    (async () => {
      await p1.keyboard.type(" alpha beta mistke", { delay: 15 });
      await p1.keyboard.press("Backspace");
      await p1.keyboard.press("Backspace");
      await p1.keyboard.type("ake gamma", { delay: 15 });
    })(),
    (async () => {
      await p2.keyboard.type("delta epsilon zeta ", { delay: 20 });
      const at = (await bodyOf(p2)).indexOf("two");
      await p2.$eval("#body", (t, at) => t.setSelectionRange(at, at + 3), at);
      await p2.keyboard.type("TWO", { delay: 20 });
      await caret(p2, 0);
      await p2.keyboard.insertText("pasted words ");
    })(),
  ]);
  let text = await settle(pages);
  console.log(`ok: typed at two places at once: ${JSON.stringify(text)}`);

  // 4. Both type at once at the same place: the end.
  await caret(p1);
  await caret(p2);
  await Promise.all([
    p1.keyboard.type(" kappa lambda", { delay: 25 }),
    p2.keyboard.type(" sigma tau", { delay: 30 }),
  ]);
  text = await settle(pages);
  console.log(`ok: typed at one place at once: ${JSON.stringify(text)}`);
  const words = new Set(text.split(/\s+/));
  const typed = ["pasted", "words", "delta", "epsilon", "zeta", "one", "TWO", "three", "alpha", "beta", "mistake",
    "gamma", "kappa", "lambda", "sigma", "tau"];
  const missing = typed.filter((w) => !words.has(w));
  expect(missing.length === 0, `missing words ${JSON.stringify(missing)} in ${JSON.stringify(text)}`);
  expect(!words.has("two") && !words.has("mistke"), `a replaced word survived: ${JSON.stringify(text)}`);
  expect(words.size === typed.length, `extra words in ${JSON.stringify(text)}`);
  console.log("ok: both pages hold the same text with every word typed");

  // 5. Latency: KEYSTROKES keystrokes on page 1, each until page 2 shows it.
  await caret(p1);
  await p1.keyboard.type("\n#", { delay: 20 });
  await settle(pages);
  const run = Array.from({ length: KEYSTROKES }, (_, i) => "abcdefghijklmnopqrstuvwxyz"[i % 26]).join("");
  const lat = await timeKeystrokes(p1, p2, "\n#", run, 30);
  const sorted = [...lat].sort((a, b) => a - b);
  console.log(
    `keystroke to display, page 1 (node 1) -> page 2 (node 2), ${KEYSTROKES} keystrokes 30 ms apart: ` +
      `p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, ` +
      `max ${sorted[sorted.length - 1].toFixed(1)} ms`,
  );
  text = await settle(pages);
  expect(text.endsWith(`\n#${run}`), "the timed run is not at the end of the text");
  console.log(`final: ${JSON.stringify({ doc, text })}`);
});
