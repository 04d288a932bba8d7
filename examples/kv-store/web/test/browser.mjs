// Drives index.html in headless Chromium: set a key through the form, see
// the event and the entry appear; a change made by another client shows up
// live; remove through the page; a reload shows the state.
//
//   node test/browser.mjs <page url> <node url> <admin token> <context>
//
// Exits non-zero with a message on the first failed expectation.
import { chromium } from "playwright-core";

const [pageUrl, nodeUrl, adminToken, context] = process.argv.slice(2);
if (!context) {
  console.error("usage: node test/browser.mjs <page url> <node url> <admin token> <context>");
  process.exit(2);
}

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

async function rpcAsOtherClient(method, args) {
  const res = await fetch(nodeUrl + "/jsonrpc", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + adminToken },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "execute", params: { context, method, args } }),
  });
  const body = await res.json();
  if (body.error) throw new Error(JSON.stringify(body.error));
}

try {
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(pageUrl);
  await page.waitForSelector("#status:text-matches('live: connected')", { timeout: 15000 });

  // 1. Through the page's form.
  await page.fill("#key", "from-browser");
  await page.fill("#value", "hello");
  await page.click("#set-button");
  await page.waitForSelector("#events li.local:text-matches('Inserted.*from-browser')", { timeout: 15000 });
  await page.waitForSelector("#entries tr[data-key='from-browser'] >> text=hello", { timeout: 15000 });
  console.log("ok: set through the page, event and entry shown");

  // 2. Another client changes state: the page learns it live.
  await rpcAsOtherClient("set", { key: "from-elsewhere", value: "world" });
  await page.waitForSelector("#events li:text-matches('Inserted.*from-elsewhere')", { timeout: 15000 });
  await page.waitForSelector("#entries tr[data-key='from-elsewhere']", { timeout: 15000 });
  console.log("ok: a change by another client shown live");

  // 3. Remove through the page.
  await page.click("#entries tr[data-key='from-elsewhere'] button");
  await page.waitForSelector("#events li:text-matches('Removed.*from-elsewhere')", { timeout: 15000 });
  await page.waitForSelector("#entries tr[data-key='from-elsewhere']", { state: "detached", timeout: 15000 });
  console.log("ok: removed through the page");

  // 4. A fresh page load shows the replicated state.
  await page.reload();
  await page.waitForSelector("#entries tr[data-key='from-browser'] >> text=hello", { timeout: 15000 });
  await page.waitForSelector("#status:text-matches('live: connected')", { timeout: 15000 });
  console.log("ok: a reload shows the state");

  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  await page.screenshot({ path: process.env.SCREENSHOT || "/tmp/kv-store-page.png" });
  console.log("browser test passed");
} catch (e) {
  console.error("browser test failed:", e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
