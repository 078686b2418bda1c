// The ops console: create, tune, pause and remove a show's waiting room,
// and watch it live (figures every second, a chart of queue length,
// admissions per second and active shoppers), and the show's waiting list
// for returned seats (its length and what became of its offers).

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
}

async function listShows() {
  const { movies } = await fetch("/api/v1/movies").then((r) => r.json());
  const select = $("#show");
  for (const m of movies) {
    const { shows } = await fetch(`/api/v1/movies/${m.id}/shows`).then((r) => r.json());
    for (const s of shows) {
      const o = document.createElement("option");
      o.value = s.id;
      o.textContent = `${m.title} · ${s.screenName} · ${new Date(s.startTime).toLocaleString()}${s.totalSeats >= 1000 ? " · flash sale" : ""}`;
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
  } catch (err) {
    if (err.status === 404) { $("#figures").replaceChildren(figure("waiting room", "none yet", "f-none")); }
  }
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
