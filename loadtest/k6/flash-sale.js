// The showgate flash-sale journey for k6 (https://k6.io), with k6/websockets:
// each virtual shopper signs in (development tokens), joins the show's
// waiting room, waits on the position socket until admitted, holds seats,
// orders and pays. Loopback targets only; bounded by the options below.
//
//   k6 run -e BASE=http://127.0.0.1:8080 -e SHOW=<showId> loadtest/k6/flash-sale.js
//
// The show must have a waiting room (PUT /api/v1/admin/waitrooms/{showId}).
import http from "k6/http";
import { check, sleep } from "k6";
import { Trend, Counter } from "k6/metrics";
import { WebSocket } from "k6/websockets";

const BASE = __ENV.BASE || "http://127.0.0.1:8080";
const SHOW = __ENV.SHOW;
if (!/^http:\/\/(127\.|localhost)/.test(BASE)) throw new Error("load tests target loopback only");

export const options = {
  scenarios: {
    shoppers: { executor: "per-vu-iterations", vus: Number(__ENV.VUS || 200), iterations: 1, maxDuration: __ENV.MAX || "2m" },
  },
};

const waited = new Trend("queue_wait_ms");
const holdTime = new Trend("hold_ms");
const sold = new Counter("seats_sold");
const json = { headers: { "content-type": "application/json" } };
const auth = (t, extra = {}) => ({ headers: { "content-type": "application/json", authorization: `Bearer ${t}`, ...extra } });

export default function () {
  const user = `k6-${__VU}-${Date.now()}`;
  const token = http.post(`${BASE}/api/v1/dev/token`, JSON.stringify({ userId: user }), json).json("token");
  const joined = http.post(`${BASE}/api/v1/waitrooms/${SHOW}/join`, null, auth(token));
  check(joined, { "joined": (r) => r.status === 200 });
  const start = Date.now();
  let admission = joined.json("admissionToken");
  if (!admission) {
    const ws = new WebSocket(`${BASE.replace("http", "ws")}/api/v1/waitrooms/${SHOW}/ws?access_token=${token}`);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "admitted") { admission = m.admissionToken; ws.close(); }
      if (m.type === "soldOut") ws.close();
    };
    ws.onclose = () => afterQueue(token, admission, start);
    return;
  }
  afterQueue(token, admission, start);
}

function afterQueue(token, admission, start) {
  waited.add(Date.now() - start);
  if (!admission) return;
  const map = http.get(`${BASE}/api/v1/shows/${SHOW}/seatmap`).json("seats").filter((s) => s.status === "AVAILABLE");
  if (map.length === 0) return;
  const pick = map[Math.floor(Math.random() * map.length)].id;
  const t = Date.now();
  const hold = http.post(`${BASE}/api/v1/holds`, JSON.stringify({ showId: SHOW, seatIds: [pick] }), auth(token, { "X-Admission-Token": admission }));
  holdTime.add(Date.now() - t);
  if (hold.status !== 201) return;
  const order = http.post(`${BASE}/api/v1/orders`, JSON.stringify({ holdId: hold.json("holdId") }), auth(token));
  const paid = http.post(`${BASE}/api/v1/orders/${order.json("orderId")}/confirm-payment`, JSON.stringify({ outcome: "SUCCESS" }), auth(token));
  if (check(paid, { "paid": (r) => r.json("status") === "CONFIRMED" })) sold.add(1);
  sleep(0.1);
}
