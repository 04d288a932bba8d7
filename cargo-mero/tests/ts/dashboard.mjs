// The dev dashboard of a three-node `cargo mero dev` session in headless
// Chromium (tests/dashboard.rs runs it): three node cards; "partition" on
// node 3; `set` on node 1 through the call console; node 2's state tree
// shows the key, node 3's card shows it behind, the DAG shows the delta
// reached node 2 but not node 3; "heal"; node 3 in sync, the delta reached
// it, and the banner gives the time to converge.
//
//   node dashboard.mjs <dashboard url>              # the test
//   node dashboard.mjs --hold <seconds> <url>       # keep the page open (benches/dashboard.rs)
//
// Exits non-zero with a message on the first failed expectation.
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const hold = args[0] === "--hold" ? Number(args[1]) : null;
const url = hold === null ? args[0] : args[2];
if (!url || (hold !== null && !(hold > 0))) {
  console.error("usage: node dashboard.mjs [--hold <seconds>] <dashboard url>");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const T = { timeout: 30000 };
const errors = [];

const card = (i) => `#nodes .card[data-node="${i}"]`;
const syncOf = (i) => `${card(i)} dd.sync`;

async function waitText(page, selector, re, what) {
  try {
    await page.waitForFunction(
      ([sel, src]) => {
        const e = document.querySelector(sel);
        return !!e && new RegExp(src).test(e.textContent);
      },
      [selector, re.source],
      T,
    );
  } catch {
    const now = await page.$eval(selector, (e) => e.textContent).catch(() => "(absent)");
    throw new Error(`${what}: ${selector} never matched ${re} (it says "${now}")`);
  }
}

try {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  await page.waitForSelector(card(3), T);
  if (hold !== null) {
    await new Promise((r) => setTimeout(r, hold * 1000));
    console.log(`held the dashboard open ${hold} s`);
  } else {
    await run(page);
  }
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  if (hold === null) console.log("dashboard test passed");
} catch (e) {
  console.error(`FAILED: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

async function run(page) {
  const cards = await page.$$("#nodes .card");
  if (cards.length !== 3) throw new Error(`${cards.length} node cards, not 3`);
  for (const i of [1, 2, 3]) await waitText(page, syncOf(i), /^in sync$/, `node ${i} at start`);
  await waitText(page, "#link", /^live$/, "the session's event stream");
  console.log("ok: three nodes, all in sync");

  await page.click(`${card(3)} button.partition`);
  await waitText(page, "#control-msg", /partition/, "the answer to partition");
  await page.waitForSelector("#control-msg.ok", T);
  await waitText(page, `${card(3)} .faults`, /partitioned/, "node 3's faults");
  console.log("ok: node 3 partitioned from the page");

  const value = `from the dashboard ${Date.now()}`;
  await page.selectOption("#console-node", "1");
  const set = 'form.call[data-method="set"]';
  await page.waitForSelector(set, T);
  await page.fill(`${set} [name="key"]`, "dash-key");
  await page.fill(`${set} [name="value"]`, value);
  await page.click(`${set} button[type=submit]`);
  await waitText(page, `${set} .output`, /delta \w+/, "the console's answer to set");
  const out = await page.$eval(`${set} .output`, (e) => e.textContent);
  const delta = /delta (\w+)/.exec(out)[1];
  console.log(`wrote dash-key = ${value}`);
  console.log(`ok: set ran on node 1 from the console (delta ${delta})`);

  await page.selectOption("#state-node", "2");
  await waitText(page, "#state", /dash-key/, "node 2's state tree");
  if ((await page.$eval("#state", (e) => e.dataset.node)) !== "2") throw new Error("the tree is not node 2's");
  console.log("ok: node 2's state tree shows the key");
  await waitText(page, syncOf(3), /^behind 1\b/, "node 3 while partitioned");
  console.log(`ok: node 3's card says "${await page.$eval(syncOf(3), (e) => e.textContent)}"`);

  const arr = (i) => `#dag g.delta[data-id="${delta}"] text.arr[data-node="${i}"]`;
  await page.waitForSelector(`${arr(2)}.reached`, T);
  await page.waitForSelector(`${arr(3)}.missing`, T);
  console.log("ok: the DAG shows the delta on node 2, missing on node 3");

  await page.click("#heal");
  await waitText(page, "#banner", /converged \d+ ms after the heal/, "the convergence banner");
  console.log(`ok: banner "${await page.$eval("#banner strong", (e) => e.textContent)}"`);
  await waitText(page, syncOf(3), /^in sync$/, "node 3 after the heal");
  await waitText(page, `${card(3)} .faults`, /^((?!partitioned).)*$/, "node 3's faults after the heal");
  await page.waitForSelector(`${arr(3)}.reached`, T);
  console.log("ok: node 3 in sync after the heal, the delta reached it");
}
