// The waiting list for returned seats in real browsers: a shopper joins the
// list of a sold-out show from the seat map, sees their place (again after a
// reload), gets an offer when another shopper gives seats back, and checks out
// with it through the page's own order and payment; a second viewer's map never
// shows the returned seats available, and the ops console counts the offer as
// taken. A second server with 5-second offers, and the list's socket refused
// so the page polls, shows an offer running out; a shopper whose map lags
// behind is told that seats are available after all.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, launchBrowser, api, artifacts } from "./harness.mjs";

const SHOW = "wl-tiny-1", SHOW2 = "wl-tiny-2";
const SEATS = ["A1", "A2", "A3", "A4"];

/** A catalog of one four-seat hall with two shows tomorrow: easy to sell out. */
function tinyCatalog() {
  const dir = mkdtempSync(path.join(tmpdir(), "sg-waitlist-"));
  const file = path.join(dir, "catalog.json");
  writeFileSync(file, JSON.stringify({
    movies: [{ id: "tiny-movie", title: "The Last Four Seats", language: "English", durationMinutes: 95, genres: ["Drama"] }],
    theatres: [{ id: "tiny-hall", name: "Tiny Hall", city: "Pune", screens: [{ id: "tiny-1", name: "Screen 1", rows: [{ row: "A", seats: SEATS.length }] }] }],
    shows: [SHOW, SHOW2].map((id, i) => ({ id, movieId: "tiny-movie", theatreId: "tiny-hall", screenId: "tiny-1",
      startTime: new Date(Date.now() + (24 + i) * 3600e3).toISOString(), price: "250.00", currency: "INR" })),
  }));
  return file;
}

let server, browser;
const catalog = tinyCatalog();
before(async () => {
  server = await startServer({ CATALOG: catalog, WAITLIST_OFFER_SECONDS: "60", HOLD_TTL_SECONDS: "300" });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); server?.stop(); });

async function tokenFor(base, userId, admin = false) {
  const { status, body } = await api(base, "POST", "/api/v1/dev/token", { userId, admin });
  assert.equal(status, 200, JSON.stringify(body));
  return body.token;
}

async function holdSeats(base, token, seatIds, showId = SHOW) {
  const res = await api(base, "POST", "/api/v1/holds", { showId, seatIds }, token);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.holdId;
}

/** A shopper's page on a 375-pixel phone, signed in as `name`, on the show
 *  (`prepare` runs on the page first). */
async function shopperPage(base, name, errors, { show = SHOW, prepare } = {}) {
  const page = await (await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true })).newPage();
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  await prepare?.(page);
  await page.goto(`${base}/`);
  await page.fill("#user", name);
  await page.click("#signin button");
  await page.waitForSelector("#me:not([hidden])");
  await page.goto(`${base}/#/show/${show}`);
  await page.waitForSelector('[data-seat="A1"]');
  return page;
}

test("a shopper joins the waiting list of a sold-out show, gets returned seats offered and books them", async () => {
  const base = server.base;
  const errors = [];
  const [rival1, rival2, waiterToken, admin] = await Promise.all(
    [["rival-1"], ["rival-2"], ["waiter"], ["ops", true]].map(([u, a]) => tokenFor(base, u, a)));
  // Sold out: two other shoppers hold every seat.
  const returned = await holdSeats(base, rival1, ["A1", "A2"]);
  await holdSeats(base, rival2, ["A3", "A4"]);

  // Another viewer watches the map the whole time: every seat status the
  // server sends it, and every seat its page ever shows as available.
  const viewer = await (await browser.newContext({ viewport: { width: 1024, height: 700 } })).newPage();
  viewer.on("pageerror", (e) => errors.push(`viewer: ${e.message}`));
  const sent = [];
  viewer.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    try {
      const m = JSON.parse(payload);
      if (m.type === "snapshot") for (const s of m.seats) sent.push([s.id, s.status]);
      if (m.type === "delta") for (const c of m.changes) sent.push([c.seatId, c.status]);
    } catch { /* not JSON */ }
  }));
  await viewer.goto(`${base}/#/show/${SHOW}`);
  await viewer.waitForSelector('[data-seat="A4"][data-status="HELD"]');
  await viewer.evaluate(() => {
    window.seenAvailable = [];
    const look = () => { for (const b of document.querySelectorAll('.seat[data-status="AVAILABLE"]')) window.seenAvailable.push(b.dataset.seat); };
    new MutationObserver(look).observe(document.querySelector("#seatmap"), { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
    look();
  });
  // Not signed in, the viewer is offered the list too (joining asks for a sign-in).
  await viewer.waitForSelector("#waitlist-join");

  // The shopper opens the sold-out show on a phone and joins the list for two.
  const shopper = await shopperPage(base, "waiter", errors);
  await shopper.waitForSelector("#waitlist-join");
  assert.match(await shopper.textContent("#waitlist"), /Sold out/);
  assert.equal(await shopper.isHidden("#best-box"), true, "nothing to pick: best available is hidden");
  await shopper.selectOption("#waitlist-qty", "2");
  await shopper.click("#waitlist-join");
  await shopper.waitForFunction(() => document.querySelector("#waitlist-position")?.textContent === "#1", undefined, { timeout: 5000 });
  assert.match(await shopper.textContent("#waitlist"), /in line for 2 seats/);
  await shopper.waitForFunction(() => document.querySelector("#wl-live")?.dataset.state === "live", undefined, { timeout: 5000 });
  // The panel fits the phone: nothing in it is wider than the screen.
  const wide = await shopper.$$eval("#waitlist *", (els) => els.filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).length);
  assert.equal(wide, 0, "the waiting-list panel fits 375 px");
  let res = await api(base, "GET", `/api/v1/shows/${SHOW}/waitlist/me`, undefined, waiterToken);
  assert.deepEqual([res.status, res.body.state, res.body.position, res.body.quantity], [200, "WAITING", 1, 2]);

  // A reload shows the standing again.
  await shopper.reload();
  await shopper.waitForFunction(() => document.querySelector("#waitlist-position")?.textContent === "#1", undefined, { timeout: 5000 });
  await shopper.waitForFunction(() => document.querySelector("#wl-live")?.dataset.state === "live", undefined, { timeout: 5000 });
  await shopper.screenshot({ path: path.join(artifacts, "waitlist-waiting-phone.png") });

  // Rival 1 gives their two seats back: they are offered to the shopper.
  res = await api(base, "DELETE", `/api/v1/holds/${returned}`, undefined, rival1);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await shopper.waitForSelector("#offer-seats", { timeout: 5000 });
  const offered = (await shopper.textContent("#offer-seats")).trim().split(/\s+/).sort();
  assert.deepEqual(offered, ["A1", "A2"]);
  assert.match(await shopper.textContent("#offer-countdown"), /^0[01]:[0-5]\d$/);
  const first = await shopper.textContent("#offer-countdown");
  await shopper.waitForFunction((t) => document.querySelector("#offer-countdown")?.textContent !== t, first, { timeout: 3000 });
  for (const id of offered) assert.equal(await shopper.getAttribute(`[data-seat="${id}"]`, "data-mine"), "true");
  res = await api(base, "GET", `/api/v1/shows/${SHOW}/waitlist/me`, undefined, waiterToken);
  assert.equal(res.body.state, "OFFERED");
  const offerHold = res.body.holdId;
  await shopper.screenshot({ path: path.join(artifacts, "waitlist-offer-phone.png") });

  // Checkout with the offer: an order for exactly those seats, then payment.
  await shopper.click("#offer-checkout");
  await shopper.waitForFunction(() => /Pay/.test(document.querySelector("#action")?.textContent), undefined, { timeout: 5000 });
  assert.match(await shopper.textContent("#summary"), /Order for A1 A2/);
  await shopper.click("#action");
  await shopper.waitForSelector("#ticket-code", { timeout: 5000 });
  assert.match(await shopper.textContent("#ticket-code"), /^SG-[0-9A-Z]{10}$/);

  res = await api(base, "GET", `/api/v1/holds/${offerHold}`, undefined, waiterToken);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const orderId = res.body.orderId;
  assert.ok(orderId, JSON.stringify(res.body));
  res = await api(base, "GET", `/api/v1/orders/${orderId}`, undefined, waiterToken);
  assert.deepEqual([res.body.status, res.body.userId, [...res.body.seatIds].sort()], ["CONFIRMED", "waiter", ["A1", "A2"]]);
  res = await api(base, "GET", `/api/v1/shows/${SHOW}/waitlist/me`, undefined, waiterToken);
  assert.deepEqual([res.body.state, res.body.orderId], ["ACCEPTED", orderId]);

  // The viewer saw the seats go from held to booked, never available.
  await viewer.waitForSelector('[data-seat="A1"][data-status="BOOKED"]', { timeout: 5000 });
  await viewer.waitForSelector('[data-seat="A2"][data-status="BOOKED"]', { timeout: 5000 });
  assert.deepEqual(await viewer.evaluate(() => window.seenAvailable), []);
  assert.deepEqual(sent.filter(([id, status]) => offered.includes(id) && status === "AVAILABLE"), []);
  assert.ok(sent.length >= SEATS.length, "the viewer's socket was followed");

  // The ops console counts the offer made and taken.
  const ops = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
  ops.on("pageerror", (e) => errors.push(`ops: ${e.message}`));
  await ops.goto(`${base}/ops.html?show=${SHOW}`);
  await ops.fill("#user", "operator");
  await ops.click("#signin button");
  await ops.waitForFunction(() => document.querySelector("#f-wl-taken")?.textContent === "1", undefined, { timeout: 5000 });
  const figures = await ops.evaluate(() => Object.fromEntries(["length", "made", "taken", "expired", "declined"]
    .map((k) => [k, document.querySelector(`#f-wl-${k}`).textContent])));
  assert.deepEqual(figures, { length: "0", made: "1", taken: "1", expired: "0", declined: "0" });
  res = await api(base, "GET", `/api/v1/admin/waitlists/${SHOW}`, undefined, admin);
  assert.deepEqual(res.body, { showId: SHOW, length: 0, offersMade: 1, offersTaken: 1, offersExpired: 0, offersDeclined: 0 });
  await ops.screenshot({ path: path.join(artifacts, "ops-waitlist.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("with the list's socket refused, the page polls: an offer that is not taken runs out, and the page says so", async () => {
  const quick = await startServer({ CATALOG: catalog, WAITLIST_OFFER_SECONDS: "5" });
  try {
    const base = quick.base;
    const errors = [];
    const [rival, other] = await Promise.all([tokenFor(base, "rival-3"), tokenFor(base, "rival-4")]);
    const returned = await holdSeats(base, rival, ["A1"]);
    await holdSeats(base, other, ["A2", "A3", "A4"]);
    // Every waiting-list socket is closed at once: the page falls back to polling.
    let refused = 0;
    const prepare = (page) => page.routeWebSocket(/\/waitlist\/ws/, (ws) => { refused++; ws.close({ code: 1011, reason: "test" }); });
    const shopper = await shopperPage(base, "slow-waiter", errors, { prepare });
    await shopper.waitForSelector("#waitlist-join");
    await shopper.selectOption("#waitlist-qty", "1");
    await shopper.click("#waitlist-join");
    await shopper.waitForFunction(() => document.querySelector("#waitlist-position")?.textContent === "#1", undefined, { timeout: 5000 });
    await shopper.waitForFunction(() => document.querySelector("#wl-live")?.dataset.state === "polling", undefined, { timeout: 5000 });
    assert.ok(refused >= 1);
    const res = await api(base, "DELETE", `/api/v1/holds/${returned}`, undefined, rival);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await shopper.waitForSelector("#offer-seats", { timeout: 5000 });
    assert.equal((await shopper.textContent("#offer-seats")).trim(), "A1");
    assert.match(await shopper.textContent("#offer-countdown"), /^00:0[0-5]$/);
    // Nobody else waits: once the offer runs out, A1 is back on sale.
    await shopper.waitForSelector("#waitlist-expired", { timeout: 8000 });
    assert.match(await shopper.textContent("#waitlist-expired"), /ran out/);
    await shopper.waitForSelector('[data-seat="A1"][data-status="AVAILABLE"]', { timeout: 5000 });
    assert.equal(await shopper.isVisible("#waitlist-expired"), true, "the notice stays once seats are on sale");
    await shopper.screenshot({ path: path.join(artifacts, "waitlist-expired-phone.png") });
    assert.deepEqual(errors, []);
  } finally {
    quick.stop();
  }
});

test("a shopper whose map still shows the show sold out is told seats are available now, and stays on the map", async () => {
  const base = server.base;
  const errors = [];
  const [rival, shopperToken] = await Promise.all([tokenFor(base, "rival-5"), tokenFor(base, "late-map")]);
  const all = await holdSeats(base, rival, SEATS, SHOW2);
  // The shopper's seat stream passes through here, so it can be held back:
  // the page keeps showing the show sold out after seats came free.
  let paused = false;
  const heldBack = [];
  let toPage;
  const prepare = (page) => page.routeWebSocket(/\/seats\/ws$/, (ws) => {
    toPage = ws;
    ws.connectToServer().onMessage((m) => { if (paused) heldBack.push(m); else ws.send(m); });
  });
  const shopper = await shopperPage(base, "late-map", errors, { show: SHOW2, prepare });
  await shopper.waitForSelector("#waitlist-join");
  paused = true;
  const res = await api(base, "DELETE", `/api/v1/holds/${all}`, undefined, rival);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await shopper.selectOption("#waitlist-qty", "2");
  await shopper.click("#waitlist-join");
  await shopper.waitForSelector("#seats-available", { timeout: 5000 });
  assert.match(await shopper.textContent("#seats-available"), /Seats are available now \(4 free\)/);
  assert.match(await shopper.url(), new RegExp(`#/show/${SHOW2}$`), "still on the seat map");
  assert.equal((await api(base, "GET", `/api/v1/shows/${SHOW2}/waitlist/me`, undefined, shopperToken)).status, 404, "not on the list");
  // The stream catches up: the seats show available, the notice stays, the join is gone.
  paused = false;
  for (const m of heldBack.splice(0)) toPage.send(m);
  await shopper.waitForSelector('[data-seat="A1"][data-status="AVAILABLE"]', { timeout: 5000 });
  assert.equal(await shopper.isVisible("#seats-available"), true);
  assert.equal(await shopper.isHidden("#waitlist-join"), true);
  assert.equal(await shopper.isVisible("#best"), true);
  assert.deepEqual(errors, []);
});

test("on a gated show, the page joins the waiting list with the shopper's admission, and a bot without one is refused", async () => {
  const gated = await startServer({ CATALOG: catalog });
  try {
    const base = gated.base;
    const errors = [];
    const [admin, filler, bot] = await Promise.all([tokenFor(base, "ops", true), tokenFor(base, "filler"), tokenFor(base, "bot")]);
    let res = await api(base, "PUT", `/api/v1/admin/waitrooms/${SHOW}`, { admitRatePerSecond: 50 }, admin);
    assert.equal(res.status, 200, JSON.stringify(res.body));

    // The shopper goes through the queue to the seat map.
    const shopper = await (await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true })).newPage();
    shopper.on("pageerror", (e) => errors.push(`shopper: ${e.message}`));
    await shopper.goto(`${base}/`);
    await shopper.fill("#user", "gated-fan");
    await shopper.click("#signin button");
    await shopper.waitForSelector("#me:not([hidden])");
    await shopper.goto(`${base}/#/show/${SHOW}`);
    await shopper.waitForSelector("#admitted", { timeout: 10000 });
    await shopper.waitForFunction(() => location.hash.startsWith("#/show/"), undefined, { timeout: 5000 });
    await shopper.waitForSelector('[data-seat="A1"]');

    // A filler, admitted too, holds every seat: the show is sold out.
    res = await api(base, "POST", `/api/v1/waitrooms/${SHOW}/join`, {}, filler);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    let pass = null;
    for (let i = 0; i < 100 && !pass; i++) {
      const me = await api(base, "GET", `/api/v1/waitrooms/${SHOW}/me`, undefined, filler);
      if (me.body.state === "ADMITTED") pass = me.body.admissionToken;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(pass, "the filler is admitted");
    const held = await fetch(`${base}/api/v1/holds`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${filler}`, "x-admission-token": pass },
      body: JSON.stringify({ showId: SHOW, seatIds: SEATS }),
    });
    assert.equal(held.status, 201, await held.text());

    // The page offers the list, and its join carries the shopper's admission.
    const joins = [];
    shopper.on("request", (req) => {
      if (req.method() === "POST" && req.url().endsWith(`/shows/${SHOW}/waitlist`)) joins.push(req.headers()["x-admission-token"]);
    });
    await shopper.waitForSelector("#waitlist-join", { timeout: 5000 });
    await shopper.selectOption("#waitlist-qty", "1");
    await shopper.click("#waitlist-join");
    await shopper.waitForFunction(() => document.querySelector("#waitlist-position")?.textContent === "#1", undefined, { timeout: 5000 });
    assert.equal(joins.length, 1);
    assert.ok(joins[0], "the join sent X-Admission-Token");
    const fan = await tokenFor(base, "gated-fan");
    res = await api(base, "GET", `/api/v1/shows/${SHOW}/waitlist/me`, undefined, fan);
    assert.deepEqual([res.status, res.body.state, res.body.position], [200, "WAITING", 1]);
    await shopper.screenshot({ path: path.join(artifacts, "waitlist-gated-phone.png") });

    // A bot that never queued is kept off the list.
    res = await api(base, "POST", `/api/v1/shows/${SHOW}/waitlist`, { quantity: 1 }, bot);
    assert.deepEqual([res.status, res.body.error?.code], [403, "ADMISSION_REQUIRED"]);
    assert.deepEqual(errors, []);
  } finally {
    gated.stop();
  }
});
