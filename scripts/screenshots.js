// Takes the README's screenshots of the shopper pages: the live seat map (a
// desktop and a phone viewport) and the waiting-room queue page (a phone).
//
//   node scripts/screenshots.js            # from the repository root
//
// Needs a debug build (target/debug/showgate, or SHOWGATE_BIN=...), Debian's
// Chromium (/usr/bin/chromium, or CHROMIUM=...) and the browser tests' npm
// packages (`cd tests/browser && npm ci`): it borrows their playwright-core.
// It starts its own showgate on a free loopback port with the memory engine
// and the demo catalog (no Redis, no Postgres, the development token route),
// makes some seats held and booked through the API, gates a second show with
// a waiting room and a queue ahead of the shopper, writes
// docs/img/seatmap.png, docs/img/seatmap-phone.png and docs/img/queue.png,
// and stops the server and the browser.
"use strict";
const { spawn } = require("node:child_process");
const { createInterface } = require("node:readline");
const { randomUUID } = require("node:crypto");
const { mkdirSync, statSync } = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const { chromium } = require(path.join(root, "tests/browser/node_modules/playwright-core"));
const out = path.join(root, "docs/img");

function startServer() {
  const bin = process.env.SHOWGATE_BIN || path.join(root, "target/debug/showgate");
  const child = spawn(bin, ["serve"], {
    env: {
      PATH: process.env.PATH,
      BIND: "127.0.0.1:0",
      LOG_FORMAT: "json",
      RUST_LOG: "info",
      STATIC_DIR: path.join(root, "static"),
      RATE_LIMIT_IP_PER_SEC: "0",
      RATE_LIMIT_USER_PER_SEC: "0",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = createInterface({ input: child.stderr });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("showgate did not start within 30 s")), 30000);
    child.on("exit", (code) => reject(new Error(`showgate exited with ${code}`)));
    lines.on("line", (line) => {
      try {
        const v = JSON.parse(line);
        if (v.fields?.message === "showgate listening") { clearTimeout(timer); resolve(`http://${v.fields.addr}`); }
      } catch { /* not JSON */ }
    });
  });
  return { ready, child };
}

async function api(base, method, p, body, token, headers = {}) {
  headers = { "content-type": "application/json", ...headers };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json().catch(() => null);
  if (res.status >= 400) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const token = async (base, userId, admin = false) =>
  (await api(base, "POST", "/api/v1/dev/token", { userId, admin })).token;

/** The first future show of dune-3 on the given screen. */
async function showOn(base, screenId) {
  const { shows } = await api(base, "GET", "/api/v1/movies/dune-3/shows");
  return shows.find((s) => s.screenId === screenId && Date.parse(s.startTime) > Date.now()).id;
}

/** Other shoppers: some seats booked (held, ordered, paid), some only held. */
async function busyShow(base, show) {
  const booked = [["C5", "C6"], ["D7", "D8", "D9"], ["E3", "E4"], ["F10", "F11"], ["G6", "G7", "G8", "G9"], ["H2"]];
  const held = [["D4", "D5"], ["E9", "E10"], ["F1", "F2"], ["I7"]];
  let n = 0;
  for (const [seats, pay] of [...booked.map((s) => [s, true]), ...held.map((s) => [s, false])]) {
    const t = await token(base, `fan-${n++}`);
    const { holdId } = await api(base, "POST", "/api/v1/holds", { showId: show, seatIds: seats }, t);
    if (!pay) continue;
    const { orderId } = await api(base, "POST", "/api/v1/orders", { holdId }, t, { "idempotency-key": randomUUID() });
    await api(base, "POST", `/api/v1/orders/${orderId}/confirm-payment`, { paymentReference: `pay_${n}`, outcome: "SUCCESS" }, t);
  }
}

async function signIn(page, base, user) {
  await page.goto(`${base}/`);
  await page.fill("#user", user);
  await page.click("#signin button");
  await page.waitForSelector("#me:not([hidden])");
}

const kb = (file) => `${(statSync(file).size / 1024).toFixed(0)} KB`;

async function seatmap(browser, base) {
  const show = await showOn(base, "pvr-forum-1");
  await busyShow(base, show);
  const shots = [
    ["seatmap.png", { viewport: { width: 1280, height: 640 } }],
    ["seatmap-phone.png", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }],
  ];
  for (const [i, [file, device]] of shots.entries()) {
    const ctx = await browser.newContext({ ...device, locale: "en-IN", timezoneId: "Asia/Kolkata" });
    const page = await ctx.newPage();
    await signIn(page, base, `alice-${i}`);
    await page.goto(`${base}/#/show/${show}`);
    await page.waitForSelector('#live[data-state="live"]');
    const pick = i === 0 ? ["C8", "C9"] : ["B8", "B9"];
    await page.waitForSelector(`[data-seat="${pick[0]}"][data-status="AVAILABLE"]`);
    for (const s of pick) await page.click(`[data-seat="${s}"]`);
    await page.click("#action");               // hold them: "yours", with the countdown
    await page.waitForSelector("#countdown");
    await page.waitForTimeout(1200);
    await page.screenshot({ path: path.join(out, file) });
    console.log(`docs/img/${file}: ${kb(path.join(out, file))}`);
    await ctx.close();
  }
}

async function queue(browser, base) {
  const show = await showOn(base, "inox-imax");
  const admin = await token(base, "ops", true);
  await api(base, "PUT", `/api/v1/admin/waitrooms/${show}`, { admitRatePerSecond: 2, burst: 1, paused: true }, admin);
  // 240 shoppers ahead, joined through the API (no sockets: they stay for ABANDON_AFTER_SECONDS).
  for (let i = 0; i < 240; i++) {
    await api(base, "POST", `/api/v1/waitrooms/${show}/join`, undefined, await token(base, `early-${i}`));
  }
  const ctx = await browser.newContext({
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
    locale: "en-IN", timezoneId: "Asia/Kolkata",
  });
  const page = await ctx.newPage();
  await signIn(page, base, "queued-fan");
  await page.goto(`${base}/#/show/${show}`);
  await page.waitForFunction(() => location.hash.startsWith("#/queue/"));
  await page.waitForFunction(() => document.querySelector("#position")?.textContent === "241");
  // Open the gate at 2/s and let the line move a little.
  await api(base, "PUT", `/api/v1/admin/waitrooms/${show}`, { paused: false }, admin);
  await page.waitForFunction(() => Number(document.querySelector("#position")?.textContent) <= 235, undefined, { timeout: 15000 });
  await page.waitForFunction(() => /to go/.test(document.querySelector("#eta")?.textContent));
  await page.screenshot({ path: path.join(out, "queue.png") });
  console.log(`docs/img/queue.png: ${kb(path.join(out, "queue.png"))}`);
  await ctx.close();
}

async function main() {
  mkdirSync(out, { recursive: true });
  const server = startServer();
  let browser;
  try {
    const base = await server.ready;
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    await seatmap(browser, base);
    await queue(browser, base);
  } finally {
    await browser?.close();
    server.child.kill("SIGTERM");
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
