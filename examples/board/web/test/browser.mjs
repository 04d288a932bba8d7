// Two members of the board page on two nodes, in headless Chromium: each
// sets a profile and sees the other's; a card created on one page shows on
// the other, and so do ticking it off, moving it (a button, then drag and
// drop), assigning, renaming and deleting it.
//
//   node test/browser.mjs <page URL of node 1> <page URL of node 2>
//
// (../../../web-kit/two-pages.mjs says what it needs and prints.)
import { twoPages } from "../../../web-kit/two-pages.mjs";

const LIVE = { timeout: 10_000 };

/** The `n`th column (0-based) of a page. */
const column = (n) => `#columns > section.column:nth-child(${n + 1})`;

/** The card titled `title` on a page, anywhere. */
const card = (title) => `li.card:has(> .row .title:text-is("${title}"))`;

await twoPages(
  "board",
  async ({ p1, p2, pages }) => {
    // Profiles: each member sets their own and sees the other's.
    for (const [page, name, colour] of [[p1, "Ada", "#aa3311"], [p2, "Grace", "#118833"]]) {
      await page.fill("#name", name);
      await page.$eval("#colour", (c, v) => (c.value = v), colour);
      await page.click("#profile button");
    }
    for (const page of pages) {
      await page.waitForSelector('#members .chip:text("Ada")', LIVE);
      await page.waitForSelector('#members .chip:text("Grace")', LIVE);
    }
    await p1.waitForSelector('#members .chip:text("Ada (you)")', LIVE);
    console.log("ok: both profiles show on both pages");

    // Columns from page 1 show on page 2.
    await p1.waitForSelector("#empty:not([hidden])", LIVE);
    await p1.click("#starter");
    await p2.waitForSelector(`${column(2)} .title:text-is("Done")`, LIVE);
    console.log("ok: columns added on page 1 show on page 2");

    // A card created on page 1 shows on page 2.
    const t0 = Date.now();
    await p1.fill(`${column(0)} form.new-card input`, "write docs");
    await p1.press(`${column(0)} form.new-card input`, "Enter");
    await p2.waitForSelector(`${column(0)} ${card("write docs")}`, LIVE);
    console.log(`ok: a card created on page 1 showed on page 2 after ${Date.now() - t0} ms`);

    // Page 2 ticks it off; page 1 sees it done.
    await p2.check(`${card("write docs")} > .row input[type=checkbox]`);
    await p1.waitForSelector(`${card("write docs")}.done`, LIVE);
    console.log("ok: done on page 2 shows on page 1");

    // Page 1 moves it on with a button; page 2 sees it in the next column.
    await p1.click(`${card("write docs")} button[title="Move to the next column"]`);
    await p2.waitForSelector(`${column(1)} ${card("write docs")}`, LIVE);
    console.log("ok: moved by a button on page 1, shown on page 2");

    // Page 2 assigns it to itself; page 1 shows Grace on it.
    await p2.click(`${card("write docs")} button[title="Assign to me"]`);
    await p1.waitForSelector(`${card("write docs")} .chip:text("Grace")`, LIVE);
    console.log("ok: assigned on page 2, shown on page 1");

    // Page 1 drags it into the last column; page 2 sees it there.
    await p1.dragAndDrop(`${column(1)} ${card("write docs")}`, `${column(2)} ul.cards`);
    await p2.waitForSelector(`${column(2)} ${card("write docs")}`, LIVE);
    console.log("ok: dragged on page 1, shown on page 2");

    // Page 2 adds a sub-task and renames the card; page 1 sees both.
    await p2.hover(card("write docs"));
    await p2.fill(`${card("write docs")} form.sub input`, "proofread");
    await p2.press(`${card("write docs")} form.sub input`, "Enter");
    await p2.click(`${card("write docs")} > .row button[title="Rename"]`);
    await p2.fill(`${column(2)} .editable input`, "write the docs");
    await p2.press(`${column(2)} .editable input`, "Enter");
    await p1.waitForSelector(`${card("write the docs")} .subtasks ${card("proofread")}`, LIVE);
    console.log("ok: a sub-task and a rename on page 2 show on page 1");

    // Page 1 deletes it; it goes from page 2.
    await p1.click(`${card("write the docs")} > .row button[title="Delete the card and its sub-tasks"]`);
    await p2.waitForSelector(card("write the docs"), { state: "detached", ...LIVE });
    await p2.waitForSelector("#log:text-matches('deleted .*write the docs.*from another node')", LIVE);
    console.log("ok: deleted on page 1, gone from page 2");
  },
  {
    onFailure: async (pages) => {
      for (const [i, page] of pages.entries()) {
        const log = await page.$eval("#log", (l) => l.textContent).catch(() => "?");
        console.error(`page ${i + 1} events:\n${log}`);
      }
    },
  },
);
