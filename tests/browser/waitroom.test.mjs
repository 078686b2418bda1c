// The waiting room in real browsers: an operator tunes the room in the ops
// console; a shopper waits on the queue page, reaches "you're in", and holds
// seats on the seat map with the admission the page was given.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { startServer, launchBrowser, api, artifacts } from "./harness.mjs";

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); server?.stop(); });

async function room(show) {
  const { body: { token } } = await api(server.base, "POST", "/api/v1/dev/token", { userId: "checker", admin: true });
  return (await api(server.base, "GET", `/api/v1/admin/waitrooms/${show}`, undefined, token)).body;
}

/** The ops console on `show`, signed in as an operator; page errors go to `errors`. */
async function opsConsole(show, errors) {
  const ops = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage();
  ops.on("pageerror", (e) => errors.push(e.message));
  await ops.goto(`${server.base}/ops.html?show=${show}`);
  await ops.fill("#user", "operator");
  await ops.click("#signin button");
  await ops.waitForSelector("#me:not([hidden])");
  return ops;
}

test("the ops console tunes the room and a queued shopper reaches the seat map", async () => {
  const { body: { shows } } = await api(server.base, "GET", "/api/v1/movies/dune-3/shows");
  const show = shows.find((s) => s.screenId === "inox-imax" && Date.parse(s.startTime) > Date.now()).id;

  // The operator creates a paused room at 1/s.
  const errors = [];
  const ops = await opsConsole(show, errors);
  await ops.fill("#rate", "1");
  await ops.check("#paused");
  await ops.click("#save");
  await ops.waitForFunction(() => /1\/s, paused/.test(document.querySelector("#saved").textContent));
  let r = await room(show);
  assert.equal(r.admitRatePerSecond, 1);
  assert.equal(r.paused, true);

  // A shopper opens the show: the page sends them to the queue.
  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
  const shopper = await (await browser.newContext(phone)).newPage();
  shopper.on("pageerror", (e) => errors.push(e.message));
  await shopper.goto(`${server.base}/`);
  await shopper.fill("#user", "queued-fan");
  await shopper.click("#signin button");
  await shopper.waitForSelector("#me:not([hidden])");
  await shopper.goto(`${server.base}/#/show/${show}`);
  await shopper.waitForFunction(() => location.hash.startsWith("#/queue/"));
  await shopper.waitForFunction(() => document.querySelector("#position")?.textContent === "1");
  assert.match(await shopper.textContent("#eta"), /paused/);
  await shopper.screenshot({ path: path.join(artifacts, "queue-page.png") });

  // The figures show them waiting; the operator opens the gate at 5/s.
  await ops.waitForFunction(() => document.querySelector("#f-queue")?.textContent === "1");
  await ops.fill("#rate", "5");
  await ops.uncheck("#paused");
  await ops.click("#save");
  await ops.waitForFunction(() => /5\/s\./.test(document.querySelector("#saved").textContent));
  r = await room(show);
  assert.equal(r.admitRatePerSecond, 5);
  assert.equal(r.paused, false);

  // The shopper is let in and lands on the seat map with their admission.
  await shopper.waitForSelector("#admitted", { timeout: 10000 });
  assert.match(await shopper.textContent("#admitted"), /You're in/);
  await shopper.waitForFunction(() => location.hash.startsWith("#/show/"), undefined, { timeout: 5000 });
  await shopper.waitForSelector('[data-seat="H10"][data-status="AVAILABLE"]');
  await shopper.click('[data-seat="H10"]');
  await shopper.click("#action");
  await shopper.waitForSelector("#countdown");
  await ops.waitForFunction(() => document.querySelector("#f-admitted")?.textContent === "1");
  await ops.waitForTimeout(1500);
  await ops.screenshot({ path: path.join(artifacts, "ops-console.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("with a proof of work set in the ops console, the queue page solves it in a worker and joins", async () => {
  const { body: { shows } } = await api(server.base, "GET", "/api/v1/movies/kaalachakra/shows");
  const show = shows.find((s) => Date.parse(s.startTime) > Date.now() + 3600e3).id;

  const errors = [];
  const ops = await opsConsole(show, errors);
  await ops.fill("#rate", "1");
  await ops.check("#paused");
  await ops.fill("#challengeBits", "14");
  await ops.click("#save");
  await ops.waitForFunction(() => /1\/s, paused/.test(document.querySelector("#saved").textContent));
  assert.equal((await room(show)).challengeBits, 14);

  const shopper = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true })).newPage();
  shopper.on("pageerror", (e) => errors.push(e.message));
  const joins = [];
  shopper.on("request", (req) => { if (req.url().endsWith("/join")) joins.push(req.postDataJSON()); });
  const workers = [];
  shopper.on("worker", (w) => workers.push(w.url()));
  await shopper.goto(`${server.base}/`);
  await shopper.fill("#user", "pow-fan");
  await shopper.click("#signin button");
  await shopper.waitForSelector("#me:not([hidden])");
  await shopper.goto(`${server.base}/#/queue/${show}`);
  await shopper.waitForFunction(() => document.querySelector("#position")?.textContent === "1", undefined, { timeout: 30000 });
  // The first join was refused for want of a challenge; the second carried a
  // solution found by the worker, and the server took it.
  assert.equal(joins.length, 2, JSON.stringify(joins));
  assert.ok(joins[1].challenge && joins[1].nonce, JSON.stringify(joins[1]));
  assert.ok(workers.some((u) => u.endsWith("/pow-worker.js")), JSON.stringify(workers));
  await ops.waitForFunction(() => document.querySelector("#f-queue")?.textContent === "1");
  assert.deepEqual(errors, []);
});
