// The honest queue in real browsers: the queue page tells a shopper their
// outlook in words (the band, seats left, the projected sell-out, what the
// estimate rests on), and when the band is UNLIKELY or SOLD_OUT offers the
// other shows of the same film that still have seats, one tap away; the ops
// console shows the sale's funnel with the drop-out between steps, seats
// left and the queue's outlook bands.
//
// A catalog of its own: one film ("Opening Night") in a 40-seat hall and a
// 4-seat hall, shows on several days, and another film whose show must
// never be offered. `SG_DOCS_IMG=1` also writes the docs' screenshots
// (docs/img/queue-outlook-likely.png, queue-outlook-unlikely.png and
// ops-funnel.png); every screenshot goes to test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, launchBrowser, api, artifacts, root } from "./harness.mjs";

const MOVIE = "opening-night";
// Big hall (40 seats): LIKELY, and the ops console's sale. Small hall (4 seats):
// UNLIKELY (30 ahead of the shopper), SOLD_OUT (every seat booked), the open
// show offered instead, and one sold out that must not be offered.
const LIKELY = "on-likely", UNLIKELY = "on-unlikely", SOLD = "on-sold", OPEN = "on-open", GONE = "on-gone", FUNNEL = "on-funnel";
const ELSEWHERE = "other-film-1";

function catalogFile() {
  const dir = mkdtempSync(path.join(tmpdir(), "sg-outlook-"));
  const file = path.join(dir, "catalog.json");
  const at = (hours) => new Date(Date.now() + hours * 3600e3).toISOString();
  const show = (id, movieId, screenId, hours) => ({ id, movieId, theatreId: "odeon", screenId, startTime: at(hours), price: "300.00", currency: "INR" });
  writeFileSync(file, JSON.stringify({
    movies: [
      { id: MOVIE, title: "Opening Night", language: "English", durationMinutes: 150, genres: ["Drama"] },
      { id: "other-film", title: "Somewhere Else", language: "Hindi", durationMinutes: 120, genres: ["Comedy"] },
    ],
    theatres: [{ id: "odeon", name: "Odeon", city: "Pune", screens: [
      { id: "odeon-big", name: "Screen 1", rows: ["A", "B", "C", "D"].map((row) => ({ row, seats: 10 })) },
      { id: "odeon-small", name: "Screen 2", rows: [{ row: "A", seats: 4 }] },
    ] }],
    shows: [
      show(LIKELY, MOVIE, "odeon-big", 24), show(UNLIKELY, MOVIE, "odeon-small", 26), show(SOLD, MOVIE, "odeon-small", 28),
      show(OPEN, MOVIE, "odeon-small", 30), show(GONE, MOVIE, "odeon-small", 50), show(FUNNEL, MOVIE, "odeon-big", 72),
      show(ELSEWHERE, "other-film", "odeon-small", 27),
    ],
  }));
  return file;
}

let server, browser, admin;
before(async () => {
  // Shoppers joined through the API keep their places for the whole test.
  server = await startServer({ CATALOG: catalogFile(), ABANDON_AFTER_SECONDS: "600", HOLD_TTL_SECONDS: "600" });
  browser = await launchBrowser();
  admin = await tokenFor("ops", true);
});
after(async () => { await browser?.close(); server?.stop(); });

async function tokenFor(userId, isAdmin = false) {
  const { status, body } = await api(server.base, "POST", "/api/v1/dev/token", { userId, admin: isAdmin });
  assert.equal(status, 200, JSON.stringify(body));
  return body.token;
}

/** A request with extra headers (the harness's `api` takes none). */
async function call(method, p, body, token, headers = {}) {
  const res = await fetch(server.base + p, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function room(show, config) {
  const res = await api(server.base, "PUT", `/api/v1/admin/waitrooms/${show}`, config, admin);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Hold → order → pay: the seats end BOOKED. */
async function book(show, seatIds, userId, admission) {
  const t = await tokenFor(userId);
  const hold = await call("POST", "/api/v1/holds", { showId: show, seatIds }, t, admission ? { "x-admission-token": admission } : {});
  assert.equal(hold.status, 201, JSON.stringify(hold.body));
  const order = await call("POST", "/api/v1/orders", { holdId: hold.body.holdId }, t, { "idempotency-key": `o-${hold.body.holdId}` });
  assert.equal(order.status, 201, JSON.stringify(order.body));
  const paid = await call("POST", `/api/v1/orders/${order.body.orderId}/confirm-payment`, { paymentReference: `pay-${userId}`, outcome: "SUCCESS" }, t);
  assert.equal(paid.status, 200, JSON.stringify(paid.body));
  assert.equal(paid.body.status, "CONFIRMED");
}

async function join(show, userId) {
  const t = await tokenFor(userId);
  const res = await api(server.base, "POST", `/api/v1/waitrooms/${show}/join`, {}, t);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { token: t, standing: res.body };
}

/** A signed-in shopper on a phone, on `show`'s queue page. */
async function queuedShopper(show, name, errors) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
    locale: "en-IN", timezoneId: "Asia/Kolkata" });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  await page.goto(`${server.base}/`);
  await page.fill("#user", name);
  await page.click("#signin button");
  await page.waitForSelector("#me:not([hidden])");
  await page.goto(`${server.base}/#/show/${show}`);
  await page.waitForFunction(() => location.hash.startsWith("#/queue/"));
  return page;
}

const digits = (text) => Number(text.replace(/[^\d]/g, ""));

/** Nothing on the page is wider than the phone's screen. */
async function fitsPhone(page, sel) {
  const wide = await page.$$eval(`${sel} *`, (els) => els.filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).map((e) => e.id || e.className || e.tagName));
  assert.deepEqual(wide, [], `${sel} fits the phone`);
}

/** Keeps the docs' copy of a screenshot when asked (SG_DOCS_IMG=1). */
function forDocs(file, name) {
  if (process.env.SG_DOCS_IMG) copyFileSync(file, path.join(root, "docs/img", name));
}

/** The shopper's own standing, as the API answers it. */
async function me(show, token) {
  const res = await api(server.base, "GET", `/api/v1/waitrooms/${show}/me`, undefined, token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.ok(res.body.outlook, `the standing carries an outlook: ${JSON.stringify(res.body)}`);
  return res.body;
}

test("a shopper early in a long queue is told there is a good chance of seats, how many are left and when they may run out", async () => {
  const errors = [];
  await room(LIKELY, { admitRatePerSecond: 0.05, burst: 1, paused: true });
  for (let i = 0; i < 2; i++) await join(LIKELY, `early-${i}`);
  const page = await queuedShopper(LIKELY, "hopeful", errors);
  const frames = [];   // what the queue socket said, for a failure's message
  page.on("websocket", (ws) => ws.on("framereceived", (f) => frames.push(f.payload)));
  await page.waitForFunction(() => document.querySelector("#position")?.textContent === "3", undefined, { timeout: 10000 });
  // Sixty more behind: more than 40 seats' worth of shoppers, so the
  // queue is projected to sell the show out, after the shopper's turn.
  for (let i = 0; i < 60; i++) await join(LIKELY, `late-${i}`);
  await room(LIKELY, { paused: false });
  await page.waitForSelector('#outlook[data-band="LIKELY"]:not([hidden])', { timeout: 10000 });

  // Admitting, the sale has a rate: the server projects the sell-out.
  const token = await tokenFor("hopeful");
  let standing = await me(LIKELY, token);
  for (let n = 0; !standing.outlook.soldOutAt && n < 50; n++) {
    await new Promise((r) => setTimeout(r, 200));
    standing = await me(LIKELY, token);
  }
  assert.ok(standing.outlook.soldOutAt, `62 shoppers for 40 seats, admitting: a sell-out is projected: ${JSON.stringify(standing)}`);
  assert.equal(standing.outlook.band, "LIKELY", JSON.stringify(standing));
  const band = await page.textContent("#outlook-band");
  assert.match(band, /^Good chance of seats — (about \d+ in 10|almost certain)$/);
  // The band is said in text, and the status line a screen reader follows
  // says the same (it changes with the band, not with every figure).
  assert.equal(await page.textContent("#outlook-said"), band);
  assert.equal(await page.getAttribute("#outlook-said", "aria-live"), "polite");
  assert.equal(await page.getAttribute("#outlook", "aria-live"), "off");
  const facts = await page.textContent("#outlook-facts");
  const left = facts.match(/([\d,]+) seats? left/);
  assert.ok(left, facts);
  assert.ok(digits(left[1]) <= 40 && digits(left[1]) > 0, facts);
  await page.waitForFunction((n) => document.querySelector("#outlook-facts")?.textContent.includes(`${n} seats left`), standing.outlook.seatsLeft, { timeout: 5000 });
  assert.equal(await page.textContent("#outlook-basis"), standing.outlook.basis === "prior" ? "Estimate from typical sales" : "Estimate from this sale so far");
  assert.equal(await page.isHidden("#other-shows"), true, "a good chance needs no other shows");
  await fitsPhone(page, "#view");
  // The page shows the projection the server now makes (it learns it from
  // the queue socket). Looked for before the screenshot, asserted after it.
  const projected = await page.waitForSelector("#outlook-soldout-at", { timeout: 5000 }).then(() => true, () => false);
  const shot = path.join(artifacts, "queue-outlook-likely.png");
  await page.screenshot({ path: shot });
  forDocs(shot, "queue-outlook-likely.png");
  assert.ok(projected, `GET …/me projects a sell-out at ${standing.outlook.soldOutAt}, but the page shows none: the queue socket sent ${JSON.stringify(frames)}`);
  assert.match(await page.textContent("#outlook-soldout-at"), /^Projected to sell out around \d{1,2}:\d\d/);
  assert.deepEqual(errors, []);
  await page.context().close();
  await api(server.base, "DELETE", `/api/v1/admin/waitrooms/${LIKELY}`, undefined, admin);
});

test("a shopper behind more people than seats is told it is unlikely and offered the film's other shows with seats; a tap opens one", async () => {
  const errors = [];
  // Two shows of the film sold out before anyone queues: GONE ungated, SOLD
  // gated later (the next test). Neither may be offered.
  await book(GONE, ["A1", "A2"], "gone-1");
  await book(GONE, ["A3", "A4"], "gone-2");
  await room(UNLIKELY, { admitRatePerSecond: 1, paused: true });
  for (let i = 0; i < 30; i++) await join(UNLIKELY, `ahead-${i}`);
  const page = await queuedShopper(UNLIKELY, "long-shot", errors);
  await page.waitForFunction(() => document.querySelector("#position")?.textContent === "31", undefined, { timeout: 10000 });
  await page.waitForSelector('#outlook[data-band="UNLIKELY"]:not([hidden])', { timeout: 10000 });
  const standing = await me(UNLIKELY, await tokenFor("long-shot"));
  assert.equal(standing.outlook.band, "UNLIKELY", JSON.stringify(standing));
  assert.equal(standing.outlook.aheadOfYou, 30, JSON.stringify(standing));
  assert.match(await page.textContent("#outlook-band"), /^(Unlikely — about 1 in \d+|Very unlikely — the seats will probably be gone before your turn)$/);
  assert.match(await page.textContent("#outlook-facts"), /4 seats left · 30 ahead of you/);

  // The other shows of the film with seats: OPEN, never the sold-out GONE,
  // the show itself or another film's show.
  await page.waitForSelector(`#other-shows:not([hidden]) a[data-show="${OPEN}"]`, { timeout: 10000 });
  const offered = await page.$$eval("#other-shows a[data-show]", (as) => as.map((a) => a.dataset.show));
  assert.ok(!offered.includes(GONE) && !offered.includes(UNLIKELY) && !offered.includes(ELSEWHERE), JSON.stringify(offered));
  assert.match(await page.textContent(`#other-shows a[data-show="${OPEN}"]`), /4 seats left/);
  assert.match(await page.textContent("#other-shows h2"), /Other shows of Opening Night with seats/);
  await fitsPhone(page, "#view");
  const shot = path.join(artifacts, "queue-outlook-unlikely.png");
  await page.screenshot({ path: shot, fullPage: true });
  forDocs(shot, "queue-outlook-unlikely.png");

  // One tap: the open show's seat map.
  await page.tap(`#other-shows a[data-show="${OPEN}"]`);
  await page.waitForFunction((id) => location.hash === `#/show/${id}`, OPEN, { timeout: 5000 });
  await page.waitForSelector('[data-seat="A1"][data-status="AVAILABLE"]', { timeout: 10000 });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test("on a sold-out show the page says so in words and offers another show of the film that has seats", async () => {
  const errors = [];
  await book(SOLD, ["A1", "A2"], "sold-1");
  await book(SOLD, ["A3", "A4"], "sold-2");
  await room(SOLD, { admitRatePerSecond: 5 });
  const page = await queuedShopper(SOLD, "too-late", errors);
  await page.waitForSelector('#outlook[data-band="SOLD_OUT"]:not([hidden])', { timeout: 10000 });
  const standing = await me(SOLD, await tokenFor("too-late"));
  assert.equal(standing.state, "SOLD_OUT", JSON.stringify(standing));
  assert.equal(standing.outlook.band, "SOLD_OUT", JSON.stringify(standing));
  assert.equal(standing.outlook.chance, 0, JSON.stringify(standing));
  assert.equal(await page.textContent("#outlook-band"), "Sold out: you keep your place if seats come back, or pick another show");
  assert.equal(await page.textContent("#outlook-said"), "Sold out: you keep your place if seats come back, or pick another show");
  assert.match(await page.textContent("#outlook-facts"), /No seats left/);
  await page.waitForSelector(`#other-shows:not([hidden]) a[data-show="${OPEN}"]`, { timeout: 10000 });
  const offered = await page.$$eval("#other-shows a[data-show]", (as) => as.map((a) => a.dataset.show));
  assert.ok(!offered.includes(GONE) && !offered.includes(SOLD) && !offered.includes(ELSEWHERE), JSON.stringify(offered));
  const shot = path.join(artifacts, "queue-outlook-sold-out.png");
  await page.screenshot({ path: shot, fullPage: true });
  await page.tap(`#other-shows a[data-show="${OPEN}"]`);
  await page.waitForFunction((id) => location.hash === `#/show/${id}`, OPEN, { timeout: 5000 });
  await page.waitForSelector('[data-seat="A1"]', { timeout: 10000 });
  assert.deepEqual(errors, []);
  await page.context().close();
});

test("the ops console shows the sale's funnel, the drop-out between steps, seats left and the queue's bands", async () => {
  const errors = [];
  // Six shoppers are let in at once; three hold, two of them order, one pays.
  await room(FUNNEL, { admitRatePerSecond: 100, burst: 100 });
  const shoppers = [];
  for (let i = 0; i < 6; i++) shoppers.push(await join(FUNNEL, `fan-${i}`));
  const admissions = [];
  for (const s of shoppers) {
    let st = s.standing;
    for (let n = 0; st.state !== "ADMITTED" && n < 50; n++) {
      await new Promise((r) => setTimeout(r, 200));
      st = (await api(server.base, "GET", `/api/v1/waitrooms/${FUNNEL}/me`, undefined, s.token)).body;
    }
    assert.equal(st.state, "ADMITTED", JSON.stringify(st));
    admissions.push(st.admissionToken);
  }
  await book(FUNNEL, ["A1", "A2"], "fan-0", admissions[0]);
  const hold1 = await call("POST", "/api/v1/holds", { showId: FUNNEL, seatIds: ["B1"] }, shoppers[1].token, { "x-admission-token": admissions[1] });
  assert.equal(hold1.status, 201, JSON.stringify(hold1.body));
  const order1 = await call("POST", "/api/v1/orders", { holdId: hold1.body.holdId }, shoppers[1].token, { "idempotency-key": `o-${hold1.body.holdId}` });
  assert.equal(order1.status, 201, JSON.stringify(order1.body));
  const hold2 = await call("POST", "/api/v1/holds", { showId: FUNNEL, seatIds: ["C1"] }, shoppers[2].token, { "x-admission-token": admissions[2] });
  assert.equal(hold2.status, 201, JSON.stringify(hold2.body));
  // Then the room pauses: forty more queue (more than the seats left), and
  // one of them gives up.
  await room(FUNNEL, { paused: true });
  const waiting = [];
  for (let i = 0; i < 40; i++) waiting.push(await join(FUNNEL, `waiter-${i}`));
  const gone = await api(server.base, "DELETE", `/api/v1/waitrooms/${FUNNEL}/me`, undefined, waiting[39].token);
  assert.equal(gone.status, 200, JSON.stringify(gone.body));

  const ops = await (await browser.newContext({ viewport: { width: 1100, height: 900 }, locale: "en-IN", timezoneId: "Asia/Kolkata" })).newPage();
  ops.on("pageerror", (e) => errors.push(`ops: ${e.message}`));
  await ops.goto(`${server.base}/ops.html?show=${FUNNEL}`);
  await ops.fill("#user", "operator");
  await ops.click("#signin button");
  await ops.waitForSelector("#me:not([hidden])");
  const want = { queued: "46", admitted: "6", held: "3", ordered: "2", paid: "1" };
  const drops = { queued: "1", admitted: "3", held: "1", ordered: "1" };
  try {
    await ops.waitForFunction(([w, d]) => Object.entries(w).every(([k, v]) => document.querySelector(`#fn-${k}`)?.textContent === v)
      && Object.entries(d).every(([k, v]) => document.querySelector(`#fn-drop-${k}`)?.textContent === v), [want, drops], { timeout: 15000 });
  } catch (e) {
    const shown = await ops.$$eval("[id^=fn-]", (els) => Object.fromEntries(els.map((x) => [x.id, x.textContent])));
    const view = await api(server.base, "GET", `/api/v1/admin/waitrooms/${FUNNEL}`, undefined, admin);
    assert.fail(`the funnel did not read ${JSON.stringify({ want, drops })}: the console shows ${JSON.stringify(shown)}; the admin view says ${JSON.stringify(view.body.funnel)}`);
  }
  // The drop-out reads as counts and shares of the step before.
  assert.match(await ops.textContent('[data-drop="admitted"]'), /admitted but never held: 3 \(50\.0 % of admitted\)/);
  assert.match(await ops.textContent('[data-drop="queued"]'), /gave up in the queue: 1 \(2\.2 % of queued\)/);
  assert.match(await ops.textContent('[data-step="paid"]'), /2\.2 % of queued/);

  const view = (await api(server.base, "GET", `/api/v1/admin/waitrooms/${FUNNEL}`, undefined, admin)).body;
  for (const k of ["funnel", "outlookBands", "seatsLeft", "outlookBasis"]) assert.ok(k in view, `the admin view has ${k}: ${JSON.stringify(view)}`);
  assert.ok("soldOutAt" in view, `the admin view has soldOutAt: ${JSON.stringify(view)}`);
  await ops.waitForFunction((n) => document.querySelector("#f-seats-left")?.textContent === n.toLocaleString(), view.seatsLeft, { timeout: 5000 });
  // 39 wait: the bands' shares are in text, each with its band.
  for (const b of ["LIKELY", "POSSIBLE", "UNLIKELY", "SOLD_OUT"]) {
    await ops.waitForSelector(`#band-${b}`);
    assert.match(await ops.textContent(`#band-${b}`), /^\d+ %$/);
  }
  assert.ok(await ops.$(".bandbar .seg[data-band]"), "the stacked bar has a segment");
  // /metrics has the same sale under the names the dashboard and the alert
  // read: the funnel, seats left, the sell-out, the bands, and admitted
  // shoppers' holds by result (fan-3 tries a booked seat: a conflict).
  const lost = await call("POST", "/api/v1/holds", { showId: FUNNEL, seatIds: ["A1"] }, shoppers[3].token, { "x-admission-token": admissions[3] });
  assert.equal(lost.status, 409, JSON.stringify(lost.body));
  const series = (await fetch(`${server.base}/metrics`).then((r) => r.text())).split("\n").filter((l) => l && !l.startsWith("#")).map((l) => {
    const m = l.match(/^(\w+)(?:\{(.*)\})? (\S+)$/);
    return m && { name: m[1], labels: Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]])), value: Number(m[3]) };
  }).filter(Boolean);
  const value = (name, labels) => series.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;
  const metricFunnel = Object.fromEntries(["queued", "admitted", "held", "ordered", "paid", "abandoned"].map((step) => [step, value("waitroom_funnel", { show: FUNNEL, step })]));
  assert.deepEqual(metricFunnel, { queued: 46, admitted: 6, held: 3, ordered: 2, paid: 1, abandoned: 1 });
  assert.equal(value("waitroom_seats_left", { show: FUNNEL }), view.seatsLeft);
  assert.ok(Number.isFinite(value("waitroom_sold_out_at_seconds", { show: FUNNEL })), "waitroom_sold_out_at_seconds");
  for (const band of ["LIKELY", "POSSIBLE", "UNLIKELY", "SOLD_OUT"]) assert.ok(Number.isFinite(value("waitroom_outlook_share", { show: FUNNEL, band })), `waitroom_outlook_share ${band}`);
  assert.equal(value("waitroom_admitted_holds_total", { show: FUNNEL, result: "held" }), 3);
  assert.equal(value("waitroom_admitted_holds_total", { show: FUNNEL, result: "conflict" }), 1);

  // The room is in the table of every room.
  await ops.waitForSelector(`#rooms tr[data-room="${FUNNEL}"]`, { timeout: 15000 });
  // Admitting again, slowly: the sell-out is projected (in the console's words).
  await room(FUNNEL, { admitRatePerSecond: 0.02, burst: 1, paused: false });
  await ops.waitForFunction(() => /\(in [\d.]+ (min|h)\)/.test(document.querySelector("#f-soldout-at")?.textContent), undefined, { timeout: 10000 });
  await ops.waitForTimeout(500);
  const shot = path.join(artifacts, "ops-funnel.png");
  await ops.locator("#sale").screenshot({ path: shot });
  forDocs(shot, "ops-funnel.png");
  await ops.screenshot({ path: path.join(artifacts, "ops-console-funnel.png"), fullPage: true });
  assert.deepEqual(errors, []);
});
