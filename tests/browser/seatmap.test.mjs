// Two shoppers in two real browsers: what A does shows on B's open seat map
// without a reload (held, then booked), and A gets a ticket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startServer, launchBrowser, aShow, artifacts, api } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); server?.stop(); });

const seat = (page, id) => page.locator(`[data-seat="${id}"]`);

async function waitStatus(page, id, status) {
  await page.waitForFunction(([id, status]) => document.querySelector(`[data-seat="${id}"]`)?.dataset.status === status,
    [id, status], { timeout: 5000 });
}

test("shopper B's seat map shows A's hold live, then A's booking, and A gets a ticket", async () => {
  const show = await aShow(server.base);
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
  const a = await (await browser.newContext(phone)).newPage();
  const b = await (await browser.newContext(phone)).newPage();
  const errors = [];
  for (const p of [a, b]) p.on("pageerror", (e) => errors.push(e.message));

  // B is just watching the show, over a compressed seat socket: Chromium
  // offers permessage-deflate, and the server takes it (API rev 3).
  const cdp = await b.context().newCDPSession(b);
  await cdp.send("Network.enable");
  const extensions = [];
  cdp.on("Network.webSocketHandshakeResponseReceived", ({ response }) => {
    const h = Object.entries(response.headers).find(([k]) => k.toLowerCase() === "sec-websocket-extensions");
    extensions.push(h ? h[1] : "");
  });
  await b.goto(`${server.base}/#/show/${show}`);
  await waitStatus(b, "C5", "AVAILABLE");
  assert.ok(extensions.some((e) => e.startsWith("permessage-deflate")), `seat socket extensions: ${extensions}`);
  assert.equal(await seat(b, "A1").getAttribute("data-status"), "UNAVAILABLE");

  // A browses to the same show through the pages, signs in and picks two seats.
  await a.goto(`${server.base}/`);
  await a.fill("#user", "alice");
  await a.click("#signin button");
  await a.waitForSelector("#me:not([hidden])");
  await a.click("a.movie >> nth=0");
  await a.waitForSelector(".chip");
  await a.goto(`${server.base}/#/show/${show}`);
  await waitStatus(a, "C5", "AVAILABLE");
  await seat(a, "C5").click();
  await seat(a, "C6").click();
  assert.match(await a.textContent("#action"), /Hold 2 seats/);
  const held = Date.now();
  await a.click("#action");

  // B sees both seats held, with no reload.
  await waitStatus(b, "C5", "HELD");
  await waitStatus(b, "C6", "HELD");
  const latency = Date.now() - held;
  await a.waitForSelector("#countdown");
  const notice = await a.locator("#toast").isVisible() ? await a.textContent("#toast") : "";
  assert.doesNotMatch(notice, /taken/, "our own hold is not reported as taken by someone else");
  assert.match(await a.textContent("#countdown"), /^[45]:\d\d$/);

  // A orders and pays.
  await a.click("#action");
  await a.waitForFunction(() => /Pay/.test(document.querySelector("#action").textContent));
  await a.click("#action");
  await a.waitForSelector("#ticket-code");
  assert.match(await a.textContent("#ticket-code"), /^SG-[0-9A-Z]{10}$/);

  // B sees them booked, still with no reload.
  await waitStatus(b, "C5", "BOOKED");
  await waitStatus(b, "C6", "BOOKED");
  await seat(b, "C5").scrollIntoViewIfNeeded();
  await b.screenshot({ path: path.join(artifacts, "seatmap-shopper-b.png"), fullPage: false });
  await a.screenshot({ path: path.join(artifacts, "ticket-shopper-a.png"), fullPage: true });
  assert.deepEqual(errors, []);
  console.log(`# hold reached the other browser's seat map in ${latency} ms (includes the hold request)`);
});

test("a seat taken by someone else while picked is dropped from the picker with a notice", async () => {
  const show = await aShow(server.base);
  const a = await (await browser.newContext()).newPage();
  await a.goto(`${server.base}/`);
  await a.fill("#user", "carol");
  await a.click("#signin button");
  await a.goto(`${server.base}/#/show/${show}`);
  await waitStatus(a, "D3", "AVAILABLE");
  await seat(a, "D3").click();
  assert.equal(await seat(a, "D3").getAttribute("data-selected"), "true");
  // Someone else holds D3 through the API.
  const { body: { token } } = await api(server.base, "POST", "/api/v1/dev/token", { userId: "dave" });
  const res = await api(server.base, "POST", "/api/v1/holds", { showId: show, seatIds: ["D3"] }, token);
  assert.equal(res.status, 201);
  await waitStatus(a, "D3", "HELD");
  assert.equal(await seat(a, "D3").getAttribute("data-selected"), "false");
  await a.waitForSelector("#toast:not([hidden])");
  assert.match(await a.textContent("#toast"), /D3 was just taken/);
});

test("best available: the server picks seats together, and another shopper's map shows them held", async () => {
  const { body: { shows } } = await api(server.base, "GET", "/api/v1/movies/kaalachakra/shows");
  const show = shows.find((s) => s.screenId === "pvr-forum-1" && Date.parse(s.startTime) > Date.now()).id;
  const laptop = { viewport: { width: 1280, height: 800 } };
  const a = await (await browser.newContext(laptop)).newPage();
  const b = await (await browser.newContext(laptop)).newPage();
  const errors = [];
  for (const p of [a, b]) p.on("pageerror", (e) => errors.push(e.message));
  await b.goto(`${server.base}/#/show/${show}`);
  await waitStatus(b, "C5", "AVAILABLE");
  await a.goto(`${server.base}/`);
  await a.fill("#user", "best-fan");
  await a.click("#signin button");
  await a.waitForSelector("#me:not([hidden])");
  await a.goto(`${server.base}/#/show/${show}`);
  await waitStatus(a, "C5", "AVAILABLE");
  await a.selectOption("#best-qty", "3");
  await a.click("#best");
  await a.waitForSelector("#countdown");
  // Three seats, one row, side by side, shown as the shopper's own.
  const mine = await a.$$eval('[data-mine="true"]', (els) => els.map((e) => e.dataset.seat));
  assert.equal(mine.length, 3, JSON.stringify(mine));
  const parsed = mine.map((id) => ({ row: id.match(/^[A-Z]+/)[0], n: Number(id.replace(/^[A-Z]+/, "")) }));
  assert.ok(parsed.every((p) => p.row === parsed[0].row), JSON.stringify(mine));
  const ns = parsed.map((p) => p.n).sort((x, y) => x - y);
  assert.deepEqual(ns, [ns[0], ns[0] + 1, ns[0] + 2]);
  assert.equal(await a.isHidden("#best-box"), true, "one hold at a time");
  for (const id of mine) await waitStatus(b, id, "HELD");
  await a.screenshot({ path: path.join(artifacts, "best-available.png") });
  assert.deepEqual(errors, []);
});

test("the 1,200-seat hall fits the screen on a laptop and on a phone, and zooms in on demand", async () => {
  const { body: { shows } } = await api(server.base, "GET", "/api/v1/movies/dune-3/shows");
  const show = shows.find((s) => s.screenId === "inox-imax" && Date.parse(s.startTime) > Date.now()).id;
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const page = await (await browser.newContext({ viewport })).newPage();
    await page.goto(`${server.base}/#/show/${show}`);
    await page.waitForSelector('[data-seat="A1"]');
    // Every seat of every row is inside the window, none scrolled off.
    const overflow = await page.$$eval(".seat", (els) => els.filter((e) => {
      const r = e.getBoundingClientRect();
      return r.left < 0 || r.right > window.innerWidth;
    }).length);
    assert.equal(overflow, 0, `${viewport.width}px: seats off the screen`);
    const cols = await page.$$eval(".row", (rows) => Math.max(...rows.map((r) => r.querySelectorAll(".seat").length)));
    assert.ok(cols >= 40, `a wide hall: ${cols} columns`);
    if (viewport.width < 500) {
      await page.click("#zoom");
      const width = await page.$eval('[data-seat="A1"]', (e) => e.getBoundingClientRect().width);
      assert.ok(width >= 24, `zoomed seats are full size: ${width}`);
      await page.screenshot({ path: path.join(artifacts, "seatmap-zoomed-phone.png") });
    } else {
      await page.screenshot({ path: path.join(artifacts, "seatmap-fit-laptop.png") });
    }
  }
});
