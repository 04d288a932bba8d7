// Two pages of a `cargo mero new --template web` project under `cargo mero
// dev`, node 1's and node 2's, in headless Chromium (tests/dev.rs runs it):
// two users of one list, live; typed errors; and a saved front-end file
// reloads both pages with the new code.
//
//   node web_pages.mjs <page 1 url> <page 2 url> <path of web/src/main.ts>
//
// Exits non-zero with a message on the first failed expectation.
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url1, url2, mainTs] = process.argv.slice(2);
if (!mainTs) {
  console.error("usage: node web_pages.mjs <page 1 url> <page 2 url> <web/src/main.ts>");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const T = { timeout: 20000 };
const errors = [];
let loads = 0;

async function open(url) {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("load", () => loads++);
  await page.goto(url);
  await page.waitForSelector("#status.open", T);
  return page;
}

async function waitLoads(n) {
  const deadline = Date.now() + T.timeout;
  while (loads < n) {
    if (Date.now() > deadline) throw new Error(`only ${loads} page loads, not ${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const original = readFileSync(mainTs, "utf8");
try {
  const p1 = await open(url1);
  const p2 = await open(url2);
  await p1.waitForSelector("#whoami:text-matches('node 1 · member')", T);
  await p2.waitForSelector("#whoami:text-matches('node 2 · member')", T);
  console.log("ok: node 1's and node 2's pages are connected");

  await p1.fill("#text", "from the first user");
  await p1.click("button[type=submit]");
  await p2.waitForSelector("#items li >> text=from the first user", T);
  await p2.waitForSelector("#log:text-matches('another node: added “from the first user”')", T);
  await p1.waitForSelector("#log:text-matches('here: added “from the first user”')", T);
  console.log("ok: an item added on node 1 shows on node 2, live");

  await p2.click("#items li:has-text('from the first user') input[type=checkbox]");
  await p1.waitForSelector("#items li.done >> text=from the first user", T);
  console.log("ok: checked on node 2, done on node 1");

  await p1.fill("#text", "x".repeat(201));
  await p1.click("button[type=submit]");
  await p1.waitForSelector("#error:text-matches('At most 200 characters')", T);
  console.log("ok: the app's typed error, told apart by the bindings");

  // Saving the page's code reloads both pages with the new code.
  const before = loads;
  writeFileSync(mainTs, original.replace("Write something first.", "Write something, please."));
  await waitLoads(before + 2);
  for (const p of [p1, p2]) {
    await p.waitForSelector("#status.open", T);
    await p.click("button[type=submit]");
    await p.waitForSelector("#error:text-matches('Write something, please.')", T);
  }
  console.log("ok: a saved main.ts reloaded both pages with the new code");
  writeFileSync(mainTs, original);
  await waitLoads(before + 4);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("web pages test passed");
} catch (e) {
  writeFileSync(mainTs, original);
  console.error(`FAILED: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
