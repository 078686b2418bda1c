// The ops console: create, tune, pause and remove a show's waiting room,
// and watch it live (figures every second, a chart of queue length,
// admissions per second and active shoppers), the sale's funnel (queued →
// admitted → held → ordered → paid, and the drop-out between steps), seats
// left, the projected sell-out and the queue's outlook bands, every
// waiting room at a glance, and the show's waiting list for returned seats
// (its length and what became of its offers).

const $ = (s) => document.querySelector(s);
let token = sessionStorage.getItem("sg.ops.token");

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { ...(body ? { "content-type": "application/json" } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) { const e = new Error(data?.error?.message || `HTTP ${res.status}`); e.status = res.status; throw e; }
  return data;
}

$("#signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    ({ token } = await api("POST", "/api/v1/dev/token", { userId: $("#user").value.trim(), admin: true }));
    sessionStorage.setItem("sg.ops.token", token);
    signedIn();
  } catch (err) { $("#saved").textContent = err.status === 404 ? "Development sign-in is off: use a token from `showgate token --admin`." : err.message; }
});

function signedIn() {
  $("#signin").hidden = true;
  $("#me").hidden = false;
  $("#me").textContent = "signed in as admin";
  load();
  pollRooms();
}

/** Every show in the catalog, as the picker lists them: id → { label, startTime }. */
const catalog = new Map();

async function listShows() {
  const { movies } = await fetch("/api/v1/movies").then((r) => r.json());
  const select = $("#show");
  for (const m of movies) {
    const { shows } = await fetch(`/api/v1/movies/${m.id}/shows`).then((r) => r.json());
    for (const s of shows) {
      const o = document.createElement("option");
      o.value = s.id;
      o.textContent = `${m.title} · ${s.screenName} · ${new Date(s.startTime).toLocaleString()}${s.totalSeats >= 1000 ? " · flash sale" : ""}`;
      catalog.set(s.id, { label: o.textContent, startTime: s.startTime });
      select.append(o);
    }
  }
  const wanted = new URLSearchParams(location.search).get("show");
  if (wanted) select.value = wanted;
  select.addEventListener("change", load);
}

const fields = ["rate", "burst", "maxActive", "ttl", "opensAt", "preQueue", "challengeBits", "paused"];
function fill(room) {
  $("#rate").value = room.admitRatePerSecond;
  $("#burst").value = room.burst;
  $("#maxActive").value = room.maxActive;
  $("#ttl").value = room.admissionTtlSeconds;
  $("#opensAt").value = room.opensAt ? new Date(room.opensAt).toISOString().slice(0, 16) : "";
  $("#preQueue").value = room.preQueue;
  $("#challengeBits").value = room.challengeBits ?? 0;
  $("#paused").checked = room.paused;
}

$("#config").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = {
    admitRatePerSecond: Number($("#rate").value),
    paused: $("#paused").checked,
    preQueue: $("#preQueue").value,
    opensAt: $("#opensAt").value ? new Date(`${$("#opensAt").value}Z`).toISOString() : null,
  };
  for (const [id, key] of [["burst", "burst"], ["maxActive", "maxActive"], ["ttl", "admissionTtlSeconds"], ["challengeBits", "challengeBits"]]) {
    if ($(`#${id}`).value) body[key] = Number($(`#${id}`).value);
  }
  try {
    const room = await api("PUT", `/api/v1/admin/waitrooms/${$("#show").value}`, body);
    fill(room);
    $("#saved").textContent = `Saved at ${new Date().toLocaleTimeString()}: ${room.admitRatePerSecond}/s${room.paused ? ", paused" : ""}.`;
  } catch (err) { $("#saved").textContent = err.message; }
});

$("#remove").addEventListener("click", async () => {
  try { await api("DELETE", `/api/v1/admin/waitrooms/${$("#show").value}`); $("#saved").textContent = "Removed: the show is open to all."; }
  catch (err) { $("#saved").textContent = err.message; }
});

// Live figures and the chart.
const series = { t: [], queue: [], rate: [], active: [] };
let plot, last;
function chart() {
  const width = Math.min(940, $("#chart").clientWidth || 600);
  plot = new uPlot({
    width, height: 260,
    series: [{}, { label: "queue length", stroke: "#ff4f6d", width: 2 }, { label: "admissions/s", stroke: "#3d7bff", width: 2, scale: "r" },
      { label: "active", stroke: "#2f8f5b", width: 2 }],
    axes: [{}, {}, { side: 1, scale: "r", grid: { show: false } }],
    scales: { x: { time: true } },
  }, [series.t, series.queue, series.rate, series.active], $("#chart"));
}

function figure(label, value, id) {
  const d = document.createElement("div");
  d.className = "figure";
  d.innerHTML = `<span class="muted">${label}</span><b id="${id}"></b>`;
  d.querySelector("b").textContent = value;
  return d;
}

async function poll() {
  if (!token || !$("#show").value) return;
  try {
    const r = await api("GET", `/api/v1/admin/waitrooms/${$("#show").value}`);
    const now = Date.now() / 1000;
    const rate = last ? Math.max(0, (r.admittedTotal - last.admitted) / (now - last.t)) : 0;
    last = { t: now, admitted: r.admittedTotal };
    $("#figures").replaceChildren(
      figure("queue length", r.queueLength, "f-queue"), figure("active", r.active, "f-active"),
      figure("admitted", r.admittedTotal, "f-admitted"), figure("joined", r.joinedTotal, "f-joined"),
      figure("abandoned", r.abandonedTotal, "f-abandoned"), figure("admit rate (observed)", `${r.observedAdmitRate}/s`, "f-rate"),
      figure("configured", `${r.admitRatePerSecond}/s${r.paused ? " ⏸" : ""}`, "f-configured"),
      figure("state", r.soldOut ? "sold out" : r.paused ? "paused" : "admitting", "f-state"));
    $("#lottery").textContent = r.lotterySeed ? `Lottery seed (revealed): ${r.lotterySeed}` : `Lottery seed hash (SHA-256, committed before opening): ${r.lotterySeedHash}`;
    for (const [k, v] of [["t", now], ["queue", r.queueLength], ["rate", rate], ["active", r.active]]) {
      series[k].push(v);
      if (series[k].length > 300) series[k].shift();
    }
    plot.setData([series.t, series.queue, series.rate, series.active]);
    sale(r);
    rooms.set($("#show").value, r);
  } catch (err) {
    if (err.status === 404) {
      $("#figures").replaceChildren(figure("waiting room", "none yet", "f-none"));
      sale(null);
      rooms.delete($("#show").value);
    }
  }
}

// ---- the sale: funnel, seats, sell-out, outlook bands -----------------------

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  e.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
  return e;
};
const count = (n) => (Number.isFinite(n) ? n.toLocaleString() : "—");
const pct = (n, of) => (Number.isFinite(n) && of > 0 ? `${((100 * n) / of).toFixed(1)} %` : "—");
const num = (v) => (Number.isFinite(v) ? v : null);

/** The funnel's steps, in order, and what losing shoppers between a step
 *  and the next is called (the first: giving up in the queue). */
const STEPS = [["queued", "queued"], ["admitted", "admitted"], ["held", "held seats"], ["ordered", "ordered"], ["paid", "paid"]];
const DROPS = { queued: "gave up in the queue", admitted: "admitted but never held", held: "held but never ordered", ordered: "ordered but never paid" };
const BANDS = [["LIKELY", "good chance"], ["POSSIBLE", "going fast"], ["UNLIKELY", "unlikely"], ["SOLD_OUT", "sold out"]];

/** The funnel as bars (widths against `queued`), each step's count and its
 *  share of the step before, and between steps the shoppers lost there:
 *  the queue's `abandoned`, then the difference of one step and the next. */
function funnel(f) {
  if (!f) return [el("p", { class: "muted", id: "funnel-none" }, "This server does not report a funnel (it predates the outlook).")];
  const top = num(f.queued) ?? 0;
  const rows = [];
  STEPS.forEach(([key, label], i) => {
    const n = num(f[key]);
    const bar = el("span", { class: "fbar" }, el("i", { style: `width:${top > 0 && n !== null ? Math.min(100, (100 * n) / top) : 0}%` }));
    rows.push(el("div", { class: "fstep", "data-step": key },
      el("span", { class: "flabel" }, label), bar,
      el("b", { id: `fn-${key}` }, count(n)),
      el("span", { class: "muted fshare" }, i === 0 ? "" : `${pct(n, top)} of queued`)));
    if (i === STEPS.length - 1) return;
    const next = num(f[STEPS[i + 1][0]]);
    const lost = key === "queued" ? num(f.abandoned) : n !== null && next !== null ? Math.max(0, n - next) : null;
    rows.push(el("div", { class: "fdrop", "data-drop": key },
      el("span", { "aria-hidden": "true" }, "↳ "), `${DROPS[key]}: `,
      el("b", { id: `fn-drop-${key}` }, count(lost)), ` (${pct(lost, n)} of ${STEPS[i][1]})`,
      key === "admitted" ? el("span", { class: "muted" }, " · includes shoppers still choosing") : null));
  });
  return rows;
}

/** The share of the queue in each band: a stacked bar whose segments carry
 *  their band in text, and the same figures as a list (colour is never the
 *  only label; a thin segment's text is in the list). */
function bands(shares, queueLength) {
  if (!shares) return [el("p", { class: "muted", id: "bands-none" }, "This server does not report the outlook.")];
  const total = BANDS.reduce((t, [b]) => t + (num(shares[b]) ?? 0), 0);
  if (total <= 0) return [el("p", { class: "muted", id: "bands-empty" }, "Nobody is waiting.")];
  const bar = el("div", { class: "bandbar", role: "img", "aria-label": BANDS.map(([b, w]) => `${w} ${Math.round(100 * (num(shares[b]) ?? 0))} %`).join(", ") });
  const legend = el("ul", { class: "bandlegend" });
  for (const [b, words] of BANDS) {
    const share = num(shares[b]) ?? 0;
    const p = `${Math.round(100 * share)} %`;
    if (share > 0) bar.append(el("span", { class: "seg", "data-band": b, style: `flex-grow:${share}`, title: `${words}: ${p}` }, share >= 0.12 ? `${words} ${p}` : ""));
    legend.append(el("li", { "data-band": b }, el("i", {}), `${words} (${b}): `, el("b", { id: `band-${b}` }, p),
      Number.isFinite(queueLength) ? el("span", { class: "muted" }, ` · about ${Math.round(share * queueLength).toLocaleString()} shoppers`) : null));
  }
  return [bar, legend];
}

/** When the projected sell-out is, in words: "20:41 (in 12 min)". */
function soldOutWhen(r) {
  if (r.soldOut) return "sold out";
  if (!r.soldOutAt) return "not projected";
  const at = new Date(r.soldOutAt);
  const mins = Math.round((at - Date.now()) / 60000);
  const t = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return mins <= 0 ? `${t} (due now)` : mins < 120 ? `${t} (in ${mins} min)` : `${t} (in ${(mins / 60).toFixed(1)} h)`;
}

/** The selected room's sale, from its admin view (null: no room). */
function sale(r) {
  if (!r) {
    $("#funnel").replaceChildren(el("p", { class: "muted" }, "No waiting room on this show."));
    $("#sale-figures").replaceChildren();
    $("#bands").replaceChildren();
    return;
  }
  $("#funnel").replaceChildren(...funnel(r.funnel));
  $("#sale-figures").replaceChildren(
    figure("seats left", count(num(r.seatsLeft)), "f-seats-left"),
    figure("projected sell-out", soldOutWhen(r), "f-soldout-at"),
    figure("still in the queue", count(num(r.queueLength)), "f-waiting"),
    figure("estimate from", r.outlookBasis === "prior" ? "typical sales (prior)" : r.outlookBasis === "observed" ? "this sale (observed)" : "—", "f-basis"));
  $("#bands").replaceChildren(...bands(r.outlookBands, num(r.queueLength)));
}

// ---- every waiting room at a glance -----------------------------------------

/** Rooms found, show id → the last admin view. The upcoming shows are
 *  asked whether they are gated once a minute (public show objects, four
 *  at a time, paced so a large catalog stays under the per-IP rate limit);
 *  the rooms found are read every 5 seconds. */
const rooms = new Map();

async function findRooms() {
  const upcoming = [...catalog].filter(([, s]) => Date.parse(s.startTime) > Date.now() - 3 * 3600e3).map(([id]) => id);
  for (let i = 0; i < upcoming.length; i += 4) {
    await Promise.all(upcoming.slice(i, i + 4).map(async (id) => {
      try {
        const s = await fetch(`/api/v1/shows/${encodeURIComponent(id)}`).then((r) => (r.ok ? r.json() : null));
        if (s?.waitingRoom && !rooms.has(id)) rooms.set(id, null);
        if (s && !s.waitingRoom) rooms.delete(id);
      } catch { /* try again next round */ }
    }));
    await new Promise((r) => setTimeout(r, 100));
  }
  pollRooms();
}

async function pollRooms() {
  if (!token) return;
  await Promise.all([...rooms.keys()].map(async (id) => {
    try { rooms.set(id, await api("GET", `/api/v1/admin/waitrooms/${encodeURIComponent(id)}`)); }
    catch (err) { if (err.status === 404) rooms.delete(id); }
  }));
  const head = el("tr", {}, ...["show", "queue", "admitted", "paid", "seats left", "sell-out", "outlook"].map((t) => el("th", {}, t)));
  const rows = [...rooms].filter(([, r]) => r).sort(([a], [b]) => (catalog.get(a)?.startTime ?? "").localeCompare(catalog.get(b)?.startTime ?? ""))
    .map(([id, r]) => {
      const pick = el("button", { class: "link", type: "button" }, catalog.get(id)?.label ?? id);
      pick.addEventListener("click", () => { $("#show").value = id; load(); window.scrollTo({ top: 0, behavior: "smooth" }); });
      const shares = r.outlookBands;
      const mini = shares ? el("div", { class: "bandbar mini", role: "img", "aria-label": BANDS.map(([b, w]) => `${w} ${Math.round(100 * (num(shares[b]) ?? 0))} %`).join(", ") },
        ...BANDS.filter(([b]) => (num(shares[b]) ?? 0) > 0).map(([b, w]) => el("span", { class: "seg", "data-band": b, style: `flex-grow:${shares[b]}`, title: `${w}: ${Math.round(100 * shares[b])} %` }))) : "—";
      return el("tr", { "data-room": id }, el("td", {}, pick), el("td", {}, count(num(r.queueLength))),
        el("td", {}, count(num(r.funnel?.admitted ?? r.admittedTotal))), el("td", {}, count(num(r.funnel?.paid))),
        el("td", {}, count(num(r.seatsLeft))), el("td", {}, soldOutWhen(r)), el("td", {}, mini));
    });
  $("#rooms").replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No upcoming show has a waiting room."))]));
}

/** The show's waiting list for returned seats, refreshed with the rest. */
async function pollWaitlist() {
  if (!token || !$("#show").value) return;
  try {
    const w = await api("GET", `/api/v1/admin/waitlists/${$("#show").value}`);
    $("#wl-figures").replaceChildren(
      figure("waiting", w.length, "f-wl-length"), figure("offers made", w.offersMade, "f-wl-made"),
      figure("taken", w.offersTaken, "f-wl-taken"), figure("expired", w.offersExpired, "f-wl-expired"),
      figure("declined", w.offersDeclined, "f-wl-declined"),
      figure("open offers", Math.max(0, w.offersMade - w.offersTaken - w.offersExpired - w.offersDeclined), "f-wl-open"));
  } catch (err) {
    $("#wl-figures").replaceChildren(figure("waiting list", err.status === 404 ? "no such show" : "unavailable", "f-wl-none"));
  }
}

async function load() {
  last = null;
  for (const k of Object.keys(series)) series[k].length = 0;
  try { fill(await api("GET", `/api/v1/admin/waitrooms/${$("#show").value}`)); }
  catch { fill({ admitRatePerSecond: 100, burst: 100, maxActive: 5000, admissionTtlSeconds: 600, preQueue: "RANDOM", challengeBits: 0, paused: false }); }
  poll();
  pollWaitlist();
}

await listShows();
chart();
if (token) signedIn();
setInterval(() => { poll(); pollWaitlist(); }, 1000);
findRooms();
setInterval(findRooms, 60000);
setInterval(pollRooms, 5000);
