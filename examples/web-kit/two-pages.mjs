// What the examples' browser tests share: two users, each in a headless
// Chromium context of their own, on the pages of two nodes.
//
//   import { twoPages } from "../../../web-kit/two-pages.mjs";
//   await twoPages("notes", async ({ p1, p2, pages, expect }) => { ... });
//
// The script is run as `node test/browser.mjs <page URL of node 1> <page URL
// of node 2>`. playwright-core comes from MERO_PLAYWRIGHT (a package.json
// or directory whose node_modules has it; default: the current directory's
// package.json); Chromium from CHROMIUM (default /usr/bin/chromium).
// Screenshots of both pages go to SCREENSHOT_DIR (default /tmp). Prints
// `<name> browser test passed` last; exits non-zero on the first failed
// expectation, or on any error a page logged.
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** Throws `what` unless `ok`. */
export function expect(ok, what) {
  if (!ok) throw new Error(what);
}

/**
 * Opens both pages, waits until each is connected to its node, runs
 * `body`, then takes screenshots. `onFailure(pages)` may print what helps
 * after a failure.
 */
export async function twoPages(name, body, { onFailure } = {}) {
  const urls = process.argv.slice(2);
  if (urls.length !== 2) {
    console.error("usage: node test/browser.mjs <page URL of node 1> <page URL of node 2>");
    process.exit(2);
  }
  const from = pathToFileURL(process.env.MERO_PLAYWRIGHT || join(process.cwd(), "package.json")).href;
  const { chromium } = createRequire(from)("playwright-core");
  // The flags keep Chromium off the network it would reach for by itself.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const shots = process.env.SCREENSHOT_DIR || "/tmp";
  const pages = [];
  try {
    const errors = [];
    for (const url of urls) {
      // A context each: two users, no shared storage.
      const page = await (await browser.newContext()).newPage();
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(url);
      await page.waitForSelector("#status.open", { timeout: 20_000 });
      pages.push(page);
    }
    console.log("ok: both pages connected");
    await body({ p1: pages[0], p2: pages[1], pages });
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: `${shots}/${name}-page-${i + 1}.png` });
    }
    expect(errors.length === 0, "page errors: " + errors.join("; "));
    console.log(`${name} browser test passed`);
  } catch (e) {
    console.error(`${name} browser test failed:`, e.message);
    if (onFailure) await onFailure(pages);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
