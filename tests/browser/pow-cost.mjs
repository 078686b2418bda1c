// What the waiting room's proof of work costs a shopper: the queue page's
// own worker (static/pow-worker.js) in headless Chromium, timed over fresh
// random challenges at each size. Not a test (no pass/fail): a measurement
// for BENCHMARKS.md.
//
//   cd tests/browser && node pow-cost.mjs [bits:runs ...]   (default 16:8 20:4 24:2)
//
// Needs the debug binary (SHOWGATE_BIN for another), Redis and Postgres.
import { startServer, launchBrowser } from "./harness.mjs";

const plan = (process.argv.slice(2).length ? process.argv.slice(2) : ["16:8", "20:4", "24:2"])
  .map((s) => s.split(":").map(Number));
const server = await startServer();
const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await page.goto(`${server.base}/`);
  console.log(`| bits | runs | median ms | min–max ms | hashes/s (all runs) |`);
  console.log(`|---|---|---|---|---|`);
  for (const [bits, runs] of plan) {
    const results = await page.evaluate(async ({ bits, runs }) => {
      const out = [];
      for (let i = 0; i < runs; i++) {
        const challenge = crypto.randomUUID();
        out.push(await new Promise((resolve) => {
          const w = new Worker("/pow-worker.js");
          w.onmessage = ({ data }) => { w.terminate(); resolve(data); };
          w.postMessage({ challenge, bits });
        }));
      }
      return out;
    }, { bits, runs });
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    const rate = results.reduce((s, r) => s + r.tries, 0) / (results.reduce((s, r) => s + r.ms, 0) / 1000);
    console.log(`| ${bits} | ${runs} | ${Math.round(ms[Math.floor(ms.length / 2)])} | ${Math.round(ms[0])}–${Math.round(ms.at(-1))} | ${Math.round(rate).toLocaleString("en")} |`);
  }
} finally {
  await browser.close();
  server.stop();
}
