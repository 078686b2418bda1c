// showgate shopper pages: movies → dates → shows → a live seat map where a
// shopper holds seats, orders, pays (mock) and gets a ticket. Plain modules,
// no framework, nothing loaded from outside this folder.

const $ = (sel, root = document) => root.querySelector(sel);
const view = $("#view");

// ---- session ---------------------------------------------------------------

const session = {
  get token() { return localStorage.getItem("sg.token"); },
  get user() { return localStorage.getItem("sg.user"); },
  set(user, token) { localStorage.setItem("sg.user", user); localStorage.setItem("sg.token", token); },
  clear() { localStorage.removeItem("sg.user"); localStorage.removeItem("sg.token"); },
};

function renderSession() {
  const signedIn = !!session.token;
  $("#signin").hidden = signedIn;
  $("#me").hidden = !signedIn;
  $("#me-name").textContent = session.user || "";
}

$("#signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = $("#user").value.trim();
  if (!user) return;
  try {
    const { token } = await api("POST", "/api/v1/dev/token", { userId: user, admin: false }, { auth: false });
    session.set(user, token);
    renderSession();
    route();
  } catch (err) {
    toast(err.status === 404 ? "Sign-in by name is only open in development." : err.message);
  }
});
$("#signout").addEventListener("click", () => { session.clear(); renderSession(); route(); });

// ---- HTTP ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.body = body;
  }
}

async function api(method, path, body, { auth = true, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  if (auth && session.token) h.authorization = `Bearer ${session.token}`;
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    if (res.status === 401 && auth) { session.clear(); renderSession(); }
    throw new ApiError(res.status, data);
  }
  return data;
}

// ---- helpers ---------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

let toastTimer;
function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 4000);
}

const fmtTime = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const fmtDate = (d) => new Date(`${d}T00:00:00Z`).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
const fmtDay = (iso) => new Date(iso).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
const money = (amount, currency) => `${currency === "INR" ? "₹" : currency + " "}${amount}`;

// ---- routing ---------------------------------------------------------------

let cleanup = () => {};
function route() {
  cleanup();
  cleanup = () => {};
  const [, page, id, extra] = location.hash.split("/");
  const render = { movie: moviePage, show: showPage, queue: queuePage, orders: ordersPage }[page] || moviesPage;
  render(decodeURIComponent(id || ""), extra).catch((err) => {
    view.replaceChildren(h("section", { class: "card" }, h("h1", {}, "Something went wrong"), h("p", {}, err.message)));
  });
}
window.addEventListener("hashchange", route);

// ---- pages -----------------------------------------------------------------

async function moviesPage() {
  const { movies } = await api("GET", "/api/v1/movies", undefined, { auth: false });
  view.replaceChildren(
    h("h1", {}, "Now booking"),
    h("div", { class: "grid" }, movies.map((m) =>
      h("a", { class: "card movie", href: `#/movie/${encodeURIComponent(m.id)}` },
        h("h2", {}, m.title),
        h("p", {}, `${m.language} · ${m.durationMinutes} min`),
        h("p", {}, m.genres.join(", "))))),
  );
}

async function moviePage(movieId, date) {
  const [movie, { dates }] = await Promise.all([
    api("GET", `/api/v1/movies/${encodeURIComponent(movieId)}`, undefined, { auth: false }),
    api("GET", `/api/v1/movies/${encodeURIComponent(movieId)}/availability`, undefined, { auth: false }),
  ]);
  const chosen = date && dates.includes(date) ? date : dates[0];
  const list = h("div", { class: "shows" });
  view.replaceChildren(
    h("h1", {}, movie.title),
    h("p", { class: "muted" }, `${movie.language} · ${movie.durationMinutes} min · ${movie.genres.join(", ")}`),
    h("div", { class: "chips", role: "tablist" }, dates.map((d) =>
      h("button", { class: "chip", "aria-pressed": String(d === chosen), onclick: () => (location.hash = `#/movie/${encodeURIComponent(movieId)}/${d}`) }, fmtDate(d)))),
    list,
  );
  if (!chosen) { list.append(h("p", { class: "muted" }, "No shows scheduled.")); return; }
  const { shows } = await api("GET", `/api/v1/movies/${encodeURIComponent(movieId)}/shows?date=${chosen}`, undefined, { auth: false });
  list.replaceChildren(...shows.map((s) =>
    h("a", { class: "card show", href: `#/show/${encodeURIComponent(s.id)}`, dataset: { show: s.id } },
      h("div", {}, h("strong", {}, fmtTime(s.startTime)), h("p", {}, `${s.theatreName} · ${s.screenName}`)),
      h("div", {}, money(s.price, s.currency)))));
}

async function ordersPage() {
  if (!session.token) { view.replaceChildren(h("section", { class: "card" }, h("p", {}, "Sign in to see your tickets."))); return; }
  const { orders } = await api("GET", "/api/v1/orders?limit=50");
  view.replaceChildren(
    h("h1", {}, "My tickets"),
    orders.length === 0 ? h("p", { class: "muted" }, "No orders yet.") :
      h("table", {}, h("tr", {}, h("th", {}, "Show"), h("th", {}, "Seats"), h("th", {}, "Status"), h("th", {}, "Ticket")),
        orders.map((o) => h("tr", {}, h("td", {}, h("a", { href: `#/show/${encodeURIComponent(o.showId)}` }, o.showId)),
          h("td", {}, o.seatIds.join(" ")), h("td", {}, o.status), h("td", {}, o.ticketCode || "—")))),
  );
}

// ---- the waiting room ------------------------------------------------------

/** Admission tokens, per show, for this tab. */
const admission = {
  get(show) {
    const raw = sessionStorage.getItem(`sg.admission.${show}`);
    if (!raw) return null;
    const a = JSON.parse(raw);
    return Date.parse(a.expiresAt) > Date.now() ? a : null;
  },
  set(show, token, expiresAt) { sessionStorage.setItem(`sg.admission.${show}`, JSON.stringify({ token, expiresAt })); },
  clear(show) { sessionStorage.removeItem(`sg.admission.${show}`); },
};

async function queuePage(showId) {
  const show = await api("GET", `/api/v1/shows/${encodeURIComponent(showId)}`, undefined, { auth: false });
  const movie = await api("GET", `/api/v1/movies/${encodeURIComponent(show.movieId)}`, undefined, { auth: false });
  if (!show.waitingRoom || admission.get(showId)) { location.hash = `#/show/${encodeURIComponent(showId)}`; return; }
  const status = h("p", { class: "muted", id: "queue-status" }, "Connecting…");
  const pos = h("div", { class: "big", id: "position" }, "—");
  const eta = h("p", { id: "eta" }, "");
  const bar = h("progress", { id: "progress", max: 1, value: 0 });
  const live = h("span", { class: "live", "data-state": "connecting" }, "connecting");
  const outlook = outlookBox();
  const others = otherShowsPanel(show, movie);
  view.replaceChildren(
    h("h1", {}, movie.title),
    h("p", { class: "muted" }, `${show.theatreName} · ${show.screenName} · ${new Date(show.startTime).toLocaleString()} `, live),
    h("section", { class: "card queue", id: "queue" },
      h("h2", {}, "You're in the queue"),
      h("p", { class: "muted" }, "Keep this page open: your place is kept while you're here (and for a minute if you drop out)."),
      h("p", {}, "Your place in line"), pos, bar, eta, outlook.el, status,
      h("button", { class: "secondary", id: "leave", onclick: leave }, "Leave the queue")),
    others.el,
  );
  if (!session.token) {
    status.textContent = "Sign in (top right) to join the queue.";
    $("#user").focus();
    const retry = () => { if (session.token) route(); };
    $("#signin").addEventListener("submit", () => setTimeout(retry, 300), { once: true });
    return;
  }
  let first = null, ws, stopped = false, left = false, attempt = 0, timer;
  const admitted = (token, expiresAt) => {
    admission.set(showId, token, expiresAt);
    pos.textContent = "🎟";
    bar.value = 1;
    status.textContent = "";
    outlook.hide();
    others.show(false);
    eta.replaceChildren(h("strong", { id: "admitted" }, "You're in!"), " Pick your seats before ", new Date(expiresAt).toLocaleTimeString(), ".");
    setTimeout(() => { if (!left) location.hash = `#/show/${encodeURIComponent(showId)}`; }, 1500);
  };
  const render = (m) => {
    if (m.type === "admitted") { stopped = true; admitted(m.admissionToken, m.expiresAt); return; }
    if (m.type === "left") { stopped = true; pos.textContent = "—"; live.dataset.state = "closed"; live.textContent = "left"; outlook.hide(); status.replaceChildren(h("strong", { id: "left-queue" }, "You left this queue"), " (from another tab?). Open the show again to rejoin at the back."); return; }
    // The outlook rides on every standing; an older server sends none.
    const soldOut = m.type === "soldOut" || m.state === "SOLD_OUT";
    const band = outlook.show(m.outlook) ?? (soldOut ? "SOLD_OUT" : null);
    others.show(band === "UNLIKELY" || band === "SOLD_OUT");
    if (soldOut) {
      pos.textContent = "—";
      eta.textContent = "";
      // The outlook says it in words when the server sends one.
      if (band && m.outlook) status.textContent = "";
      else status.replaceChildren(h("strong", { id: "sold-out" }, "Sold out."), " Every seat is booked; we'll let you know if seats come back.");
      return;
    }
    if (m.position === null) {
      pos.textContent = "🎲";
      eta.textContent = `${m.queueLength} in the draw. Places are drawn by lottery when the sale opens.`;
      status.textContent = "";
      return;
    }
    if (first === null || m.position > first) first = m.position;
    pos.textContent = String(m.position);
    bar.value = first > 1 ? 1 - (m.position - 1) / first : 0.99;
    eta.textContent = m.etaSeconds == null ? "Admission is paused for a moment." :
      m.etaSeconds < 60 ? `About ${m.etaSeconds} s to go · ${m.queueLength} waiting` : `About ${Math.ceil(m.etaSeconds / 60)} min to go · ${m.queueLength} waiting`;
    status.textContent = "";
  };
  const open = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/api/v1/waitrooms/${encodeURIComponent(showId)}/ws?access_token=${encodeURIComponent(session.token)}`);
    ws.onopen = () => { attempt = 0; live.dataset.state = "live"; live.textContent = "live"; };
    ws.onmessage = (ev) => render(JSON.parse(ev.data));
    ws.onclose = async (ev) => {
      if (stopped) return;
      if (ev.code === 4410) { location.hash = `#/show/${encodeURIComponent(showId)}`; return; }
      live.dataset.state = "reconnecting";
      live.textContent = "reconnecting";
      status.textContent = "Connection lost; reconnecting — your place is kept.";
      // Poll once meanwhile: it counts as presence and may carry the admission.
      try { const me = await api("GET", `/api/v1/waitrooms/${encodeURIComponent(showId)}/me`); if (me.state === "ADMITTED") { stopped = true; admitted(me.admissionToken, me.admissionExpiresAt); return; } render({ type: "position", ...me }); } catch { /* offline */ }
      const delay = Math.min(15000, 500 * 2 ** attempt++) * (0.5 + Math.random());
      timer = setTimeout(open, delay);
    };
  };
  /** Joins through the room's proof of work: on CHALLENGE_REQUIRED (or a
   *  challenge that went stale) it fetches a challenge and solves it in a
   *  Web Worker, so the page stays responsive, then joins with the nonce. */
  async function join() {
    const path = `/api/v1/waitrooms/${encodeURIComponent(showId)}`;
    try { return await api("POST", `${path}/join`, {}); }
    catch (err) { if (err.code !== "CHALLENGE_REQUIRED") throw err; }
    for (let attempt = 0; ; attempt++) {
      const c = await api("GET", `${path}/challenge`);
      status.replaceChildren(h("span", { id: "solving" }, "Checking this browser before it joins (a few seconds at most)…"));
      const { nonce } = await solveChallenge(c.challenge, c.bits);
      try { return await api("POST", `${path}/join`, { challenge: c.challenge, nonce }); }
      catch (err) { if (err.code !== "CHALLENGE_FAILED" || attempt >= 2) throw err; }
    }
  }
  async function leave() {
    stopped = true;
    ws?.close(1000);
    try { await api("DELETE", `/api/v1/waitrooms/${encodeURIComponent(showId)}/me`); } catch { /* already gone */ }
    location.hash = `#/movie/${encodeURIComponent(show.movieId)}`;
  }
  try {
    const me = await join();
    if (me.state === "ADMITTED") { stopped = true; admitted(me.admissionToken, me.admissionExpiresAt); }
    else { render({ type: "position", ...me }); open(); }
  } catch (err) {
    status.replaceChildren(h("strong", { id: "join-failed" }, "Could not join the queue: "), err.message);
  }
  cleanup = () => { stopped = true; left = true; clearTimeout(timer); ws?.close(1000); };
}

// ---- the outlook: will there be a seat when my turn comes? ----------------

/** The outlook's chance as a person says it ("about 9 in 10", "about 1 in
 *  5"): tenths down to 0.35, then "1 in N", where "in 10" would round off
 *  what matters. */
function odds(chance) {
  const c = Math.max(0, Math.min(1, Number(chance) || 0));
  if (c >= 0.35) return `about ${Math.round(c * 10)} in 10`;
  return `about 1 in ${Math.max(2, Math.round(1 / Math.max(c, 0.01)))}`;
}

/** The outlook's band in words, so it never rests on colour alone:
 *  `[headline, icon]`, or null for a band this page does not know. */
function outlookWords(o) {
  const c = Number(o.chance) || 0;
  switch (o.band) {
    case "LIKELY": return [c >= 0.95 ? "Good chance of seats — almost certain" : `Good chance of seats — ${odds(c)}`, "✓"];
    case "POSSIBLE": return [`Seats are going fast — ${odds(c)}`, "◔"];
    case "UNLIKELY": return [c < 0.03 ? "Very unlikely — the seats will probably be gone before your turn" : `Unlikely — ${odds(c)}`, "!"];
    case "SOLD_OUT": return ["Sold out: you keep your place if seats come back, or pick another show", "✕"];
    default: return null;
  }
}

/** The queue page's outlook: the band in words, seats left, the people
 *  ahead, the projected sell-out and what the estimate rests on. The box
 *  itself is not a live region (the chance moves with every tick); a
 *  hidden status line says the band again only when the band changes, so a
 *  screen reader hears "Seats are going fast" once, not every new figure.
 *  `show(outlook)` answers the band shown (null: none, the box hidden). */
function outlookBox() {
  const headline = h("span", { id: "outlook-band" });
  const icon = h("span", { class: "band-icon", "aria-hidden": "true" });
  const facts = h("p", { class: "facts", id: "outlook-facts" });
  const basis = h("p", { class: "basis", id: "outlook-basis" });
  const said = h("p", { class: "sr-only", id: "outlook-said", role: "status", "aria-live": "polite" });
  const box = h("div", { class: "outlook", id: "outlook", hidden: true, "aria-live": "off" },
    h("p", { class: "band" }, icon, headline), facts, basis);
  let band = null;
  return {
    el: h("div", {}, box, said),
    show(o) {
      const words = o && outlookWords(o);
      if (!words) { box.hidden = true; return null; }
      const [text, glyph] = words;
      box.hidden = false;
      box.dataset.band = o.band;
      icon.textContent = glyph;
      headline.textContent = text;
      const left = Number.isFinite(o.seatsLeft) ? o.seatsLeft : null;
      const parts = [];
      if (left !== null) parts.push(left === 0 ? "No seats left" : `${left.toLocaleString()} seat${left === 1 ? "" : "s"} left`);
      if (o.band !== "SOLD_OUT" && Number.isFinite(o.aheadOfYou) && o.aheadOfYou > 0) parts.push(`${o.aheadOfYou.toLocaleString()} ahead of you`);
      facts.replaceChildren(parts.join(" · "));
      if (o.band !== "SOLD_OUT" && o.soldOutAt) facts.append(h("br"), h("span", { id: "outlook-soldout-at" }, `Projected to sell out around ${fmtTime(o.soldOutAt)}`));
      // Sold out is a fact, not an estimate.
      basis.textContent = o.band === "SOLD_OUT" ? "" : o.basis === "prior" ? "Estimate from typical sales" : o.basis === "observed" ? "Estimate from this sale so far" : "";
      if (o.band !== band) said.textContent = text;
      band = o.band;
      return band;
    },
    hide() { box.hidden = true; band = null; },
  };
}

/** Upcoming shows of the same film (any date the catalog lists) with seats
 *  free now, nearest in time to `show` first: the catalog's list, then each
 *  candidate's seat map, a few at a time, until `want` are found or `most`
 *  were looked at. */
async function otherShowsWithSeats(show, { want = 4, most = 12 } = {}) {
  const { shows } = await api("GET", `/api/v1/movies/${encodeURIComponent(show.movieId)}/shows`, undefined, { auth: false });
  const at = Date.parse(show.startTime);
  const candidates = shows
    .filter((s) => s.id !== show.id && Date.parse(s.startTime) > Date.now())
    .sort((a, b) => Math.abs(Date.parse(a.startTime) - at) - Math.abs(Date.parse(b.startTime) - at))
    .slice(0, most);
  const found = [];
  for (let i = 0; i < candidates.length && found.length < want; i += 4) {
    const batch = await Promise.all(candidates.slice(i, i + 4).map(async (s) => {
      try {
        const map = await api("GET", `/api/v1/shows/${encodeURIComponent(s.id)}/seatmap`, undefined, { auth: false });
        return { ...s, free: map.seats.filter((x) => x.status === "AVAILABLE").length };
      } catch { return { ...s, free: 0 }; }
    }));
    found.push(...batch.filter((s) => s.free > 0));
  }
  return found.slice(0, want).sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime));
}

/** The queue page's "other shows" card, shown while the outlook is
 *  UNLIKELY or SOLD_OUT: each show one tap away. Looked up when it turns
 *  from hidden to shown, at most once in 5 minutes (a whole queue can turn
 *  UNLIKELY together: each shopper costs a show list and a few seat maps),
 *  after a random wait of up to 2 s so that they do not ask at once. */
function otherShowsPanel(show, movie) {
  const list = h("div", { class: "shows", id: "other-shows-list" }, h("p", { class: "muted" }, "Looking for other shows with seats…"));
  const el = h("section", { class: "card others", id: "other-shows", hidden: true },
    h("h2", {}, `Other shows of ${movie.title} with seats`), list);
  let asked = 0;
  const load = async () => {
    asked = Date.now();
    await new Promise((r) => setTimeout(r, Math.random() * 2000));
    try {
      const found = await otherShowsWithSeats(show);
      list.replaceChildren(...(found.length === 0 ? [h("p", { class: "muted", id: "no-other-shows" }, "No other show of this film has seats right now.")] :
        found.map((s) => h("a", { class: "card show", href: `#/show/${encodeURIComponent(s.id)}`, dataset: { show: s.id } },
          h("div", {}, h("strong", {}, `${fmtDay(s.startTime)} · ${fmtTime(s.startTime)}`),
            h("p", {}, [s.theatreName, s.screenName].filter(Boolean).join(" · "))),
          h("div", { class: "free" }, `${s.free.toLocaleString()} seat${s.free === 1 ? "" : "s"} left`)))));
    } catch {
      list.replaceChildren(h("p", { class: "muted" }, "Could not list other shows just now."));
    }
  };
  return {
    el,
    show(v) {
      const was = !el.hidden;
      el.hidden = !v;
      if (v && !was && (asked === 0 || Date.now() - asked > 300000)) load();
    },
  };
}

/** Finds a nonce for a waiting room's proof of work in `pow-worker.js`. */
function solveChallenge(challenge, bits) {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/pow-worker.js");
    worker.onmessage = ({ data }) => { if (data.nonce !== undefined) { worker.terminate(); resolve(data); } };
    worker.onerror = (e) => { worker.terminate(); reject(new Error(e.message || "the proof of work failed")); };
    worker.postMessage({ challenge, bits });
  });
}

// ---- the waiting list for returned seats ----------------------------------

/** The waiting-list panel of a show's seat map. Shown when the map has no
 *  AVAILABLE seat (`setSoldOut`), or while the shopper is on the list. The
 *  shopper's standing comes from the list's socket (polling `…/waitlist/me`
 *  every 2 s while the socket is down): a place in line, then an offer (an
 *  ordinary hold of theirs, taken through the page's own checkout by
 *  `page.checkout`), then how the offer ended. `page.changed` repaints the
 *  map (offered seats show as the shopper's). */
function waitlistPanel(showId, page) {
  const path = `/api/v1/shows/${encodeURIComponent(showId)}/waitlist`;
  const key = `sg.waitlist.${showId}`;   // "on this list", so a reload asks even if seats show free
  const el = h("section", { class: "card waitlist", id: "waitlist", hidden: true });
  let standing = null;   // the server's word: { state, position, quantity, holdId, seatIds, expiresAt, orderId }
  let soldOut = false, checked = false, busy = false, free = null, qty = 2;
  let endedHere = false;   // an offer ended while this page watched: say how, sold out or not
  let ws = null, poller = null, retry = null, attempt = 0, offerTick = null, stopped = false, link = "connecting";
  const active = () => standing?.state === "WAITING" || standing?.state === "OFFERED";

  const set = (s) => {
    const prev = standing, was = active();
    // An `ended` message names the hold but not its seats: keep the offer's.
    const keep = s && prev && s.holdId && prev.holdId === s.holdId ? prev : {};
    standing = s ? { ...keep, ...s } : null;
    if (active()) endedHere = false;
    else if (was && standing && standing.state !== "LEFT") endedHere = true;
    if (active()) localStorage.setItem(key, "1"); else localStorage.removeItem(key);
    if (standing?.state === "OFFERED" && prev?.state !== "OFFERED") toast(`Seats came back for you: ${standing.seatIds.join(" ")}`);
    if (standing?.state === "EXPIRED" && prev?.state === "OFFERED") toast("Your offer ran out.");
    if (!active()) { stopPolling(); clearTimeout(retry); }
    render();
    page.changed();
    follow();
  };
  const check = async () => {
    try { set(await api("GET", `${path}/me`)); }
    catch (err) { if (err.status === 404) set(null); /* else offline: keep what we had */ }
  };
  const startPolling = () => { if (!poller) { poller = setInterval(check, 2000); check(); } };
  const stopPolling = () => { clearInterval(poller); poller = null; };
  const showLink = (state) => { link = state; const l = $("#wl-live", el); if (l) { l.dataset.state = state; l.textContent = state; } };

  /** Follows the standing on the list's socket while the shopper is on it;
   *  if the socket fails or drops, polls meanwhile and tries it again. */
  function follow() {
    if (stopped || ws || !active() || !session.token) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const sock = new WebSocket(`${proto}://${location.host}${path}/ws?access_token=${encodeURIComponent(session.token)}`);
    ws = sock;
    sock.onopen = () => { attempt = 0; stopPolling(); showLink("live"); };
    sock.onmessage = (ev) => set(JSON.parse(ev.data));
    sock.onclose = () => {
      if (ws === sock) ws = null;
      if (stopped || !active()) return;
      showLink("polling");
      startPolling();
      clearTimeout(retry);
      retry = setTimeout(follow, Math.min(30000, 1000 * 2 ** attempt++) * (0.5 + Math.random()));
    };
  }

  async function join() {
    if (!page.signIn()) return;
    busy = true;
    render();
    try {
      free = null;
      // On a gated show the list needs the same admission as a hold.
      const adm = admission.get(showId);
      set(await api("POST", path, { quantity: qty }, { headers: adm ? { "X-Admission-Token": adm.token } : {} }));
    } catch (err) {
      if (err.code === "ADMISSION_REQUIRED") {
        admission.clear(showId);
        toast("Your admission has ended: join the waiting room again to wait for returned seats.");
        location.hash = `#/queue/${encodeURIComponent(showId)}`;
      } else if (err.code === "SEATS_AVAILABLE") {
        free = err.body.error.freeSeats ?? qty;
        toast("Seats are available now: pick them on the map.");
      } else toast(err.message);
    } finally {
      busy = false;
      render();
    }
  }
  async function leave() {
    busy = true;
    render();
    try { await api("DELETE", `${path}/me`); set({ state: "LEFT" }); }
    catch (err) { if (err.status === 404) set(null); else toast(err.message); }
    finally { busy = false; render(); }
  }

  const joinForm = (again) => h("div", { class: "wl-form" },
    h("label", {}, "Seats ", h("select", { id: "waitlist-qty", "aria-label": "how many seats to wait for", onchange: (e) => (qty = Number(e.target.value)) },
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => h("option", { value: n, selected: n === qty }, String(n))))),
    h("button", { id: "waitlist-join", disabled: busy, onclick: join }, again ? "Join the waiting list again" : "Join the waiting list"));

  function render() {
    clearInterval(offerTick);
    const s = standing?.state;
    const ended = { EXPIRED: 1, RELEASED: 1, ACCEPTED: 1 }[s];
    el.hidden = !active() && !soldOut && free === null && !endedHere;
    el.classList.toggle("offer", s === "OFFERED");
    if (el.hidden) { el.replaceChildren(); return; }
    const live = h("span", { class: "live", id: "wl-live", "data-state": link }, link);
    if (s === "WAITING") {
      el.replaceChildren(
        h("h2", {}, "You're on the waiting list ", live),
        h("div", { class: "wl-place" }, h("span", { class: "big", id: "waitlist-position" }, `#${standing.position}`),
          h("p", {}, `in line for ${standing.quantity} seat${standing.quantity > 1 ? "s" : ""}.`)),
        h("p", {}, "Seats that come back go to the list first, in order. When yours do, they're held for you here: keep this page open."),
        h("div", { class: "wl-form" }, h("button", { id: "waitlist-leave", class: "secondary", disabled: busy, onclick: leave }, "Leave the waiting list")));
      return;
    }
    if (s === "OFFERED") {
      const inCheckout = page.current() === standing.holdId;
      const cd = h("span", { class: "countdown", id: "offer-countdown" });
      el.replaceChildren(
        h("h2", {}, "Seats came back for you! ", live),
        h("p", {}, "Held for you: ", h("strong", { class: "offer-seats", id: "offer-seats" }, standing.seatIds.join(" "))),
        h("p", {}, "The offer runs out in ", cd, "."),
        inCheckout ? h("p", { id: "offer-in-checkout" }, "In checkout below.") :
          h("div", { class: "wl-form" },
            h("button", { id: "offer-checkout", disabled: busy, onclick: () => page.checkout(standing) }, "Continue to checkout"),
            h("button", { id: "offer-decline", class: "secondary", disabled: busy, onclick: leave }, "No thanks")));
      const end = Date.parse(standing.expiresAt);
      const step = () => {
        const left = Math.max(0, Math.round((end - Date.now()) / 1000));
        cd.textContent = `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
        if (left === 0) { clearInterval(offerTick); if (!ws) check(); }   // the socket says how it ended
      };
      step();
      offerTick = setInterval(step, 500);
      return;
    }
    const notes = [];
    if (s === "ACCEPTED") notes.push(h("p", { id: "waitlist-accepted" }, h("strong", {}, "You took the offer"), ` (seats ${(standing.seatIds || []).join(" ")}). `, h("a", { href: "#/orders" }, "My tickets")));
    if (s === "EXPIRED") notes.push(h("p", { id: "waitlist-expired" }, h("strong", {}, "Your offer ran out."), ` Its seats${standing.seatIds ? ` (${standing.seatIds.join(" ")})` : ""} went to the next shopper in line, or back on sale.`));
    if (s === "RELEASED") notes.push(h("p", { id: "waitlist-released" }, "You gave the offered seats back."));
    if (free !== null) notes.push(h("p", { id: "seats-available" }, h("strong", {}, "Seats are available now"), ` (${free} free): pick them on the map above.`));
    el.replaceChildren(
      h("h2", {}, soldOut ? "Sold out" : "Waiting list"),
      ...notes,
      ...(soldOut ? [h("p", {}, "Join the waiting list: seats that come back (a hold runs out, an order is cancelled) are held for the first shopper in line who wants that many."), joinForm(Boolean(ended))] : []));
  }

  return {
    el,
    /** Whether the shopper could pick nothing on the map. The first call
     *  asks where a signed-in shopper stands (a reload while on the list). */
    setSoldOut(v) {
      const ask = !checked && session.token && (v || localStorage.getItem(key));
      if (v === soldOut && !ask) return;
      if (v) free = null;
      soldOut = v;
      if (ask) { checked = true; check(); }
      render();
    },
    /** Seats offered to the shopper right now (shown as theirs on the map). */
    offered: () => (standing?.state === "OFFERED" ? standing.seatIds : []),
    refresh: render,
    stop() { stopped = true; stopPolling(); clearTimeout(retry); clearInterval(offerTick); ws?.close(1000); },
  };
}

// ---- the live seat map -----------------------------------------------------

/** Keeps a socket to the seat stream: snapshot, then contiguous deltas (a
 *  delta covers `fromVersion..version`, the net change of each seat). A new
 *  snapshot (a new epoch, or catching up) replaces the map. On a gap, a
 *  delta of another epoch or a "reconnect" close it reconnects (with
 *  backoff) and takes the fresh snapshot it is sent, keeping the version it
 *  had so nothing is shown twice. */
function seatStream(showId, { onSnapshot, onDelta, onState }) {
  let ws, version = -1, epoch = null, stopped = false, attempt = 0, timer;
  const open = () => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/api/v1/shows/${encodeURIComponent(showId)}/seats/ws`);
    ws.onopen = () => { attempt = 0; onState("live"); };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "snapshot") { version = msg.version; epoch = msg.epoch; onSnapshot(msg); }
      else if (msg.type === "delta") {
        const from = msg.fromVersion ?? msg.version;
        if (msg.version <= version && msg.epoch === epoch) return; // already shown
        if (version >= 0 && (from !== version + 1 || msg.epoch !== epoch)) { ws.close(); return; } // gap: resync
        version = msg.version;
        onDelta(msg);
      }
    };
    ws.onclose = (ev) => {
      if (stopped) return;
      const terminal = ev.code >= 4000 && ev.code < 4500;
      onState(terminal ? "closed" : "reconnecting");
      if (terminal) return;
      const delay = Math.min(10000, 250 * 2 ** attempt++) * (0.5 + Math.random());
      timer = setTimeout(open, delay);
    };
  };
  open();
  return () => { stopped = true; clearTimeout(timer); ws?.close(1000); };
}

async function showPage(showId) {
  const show = await api("GET", `/api/v1/shows/${encodeURIComponent(showId)}`, undefined, { auth: false });
  if (show.waitingRoom && !admission.get(showId)) { location.hash = `#/queue/${encodeURIComponent(showId)}`; return; }
  const movie = await api("GET", `/api/v1/movies/${encodeURIComponent(show.movieId)}`, undefined, { auth: false });
  const seats = new Map();       // id → button
  const selected = new Set();    // seats picked, not yet held
  let hold = null, order = null, tick;
  // While our own hold request is in flight its seats turn HELD on the
  // stream before the answer arrives: that is us, not a rival.
  let holding = false;

  const live = h("span", { class: "live", id: "live", "data-state": "connecting" }, "live");
  const rows = h("div", { class: "rows", id: "seatmap" });
  const map = h("div", { class: "seatmap" }, rows);
  // Zoom to fit: seats sized so the widest row fits the screen (a 48-seat
  // IMAX row on a phone too); "Zoom in" gives full-size seats to scroll.
  let cols = 0, zoomed = false;
  const zoom = h("button", { id: "zoom", class: "secondary zoom", hidden: true, onclick: () => { zoomed = !zoomed; fit(); } });
  const fit = () => {
    const width = map.clientWidth || window.innerWidth;
    const label = 2 * ((rows.querySelector(".row-label")?.offsetWidth ?? 24) + 4);
    const gap = (width - label) / Math.max(cols, 1) >= 22 ? 4 : 1;
    const size = Math.max(4, Math.min(26, Math.floor((width - label) / Math.max(cols, 1)) - gap));
    const seat = zoomed ? 26 : size;
    map.style.setProperty("--seat", `${seat}px`);
    map.style.setProperty("--gap", `${zoomed ? 4 : gap}px`);
    zoom.hidden = size >= 22;
    zoom.textContent = zoomed ? "Fit to screen" : "Zoom in";
  };
  window.addEventListener("resize", () => { if (!zoomed) fit(); });
  const sum = h("div", { class: "sum", id: "summary" });
  const action = h("button", { id: "action", disabled: true });
  const secondary = h("button", { id: "secondary", class: "secondary", hidden: true });
  const outcome = h("section", { id: "outcome" });
  // Best available: the server picks N seats together and holds them.
  const bestQty = h("select", { id: "best-qty", "aria-label": "how many seats together" },
    [1, 2, 3, 4, 5, 6].map((n) => h("option", { value: n, selected: n === 2 }, String(n))));
  const best = h("span", { class: "best", id: "best-box" }, "Best ", bestQty, " ",
    h("button", { id: "best", class: "secondary", onclick: () => holdSeats({ quantity: Number(bestQty.value) }) }, "Best available"));
  // The waiting list, offered when nothing is left to pick.
  const wl = waitlistPanel(showId, {
    signIn: () => !needSignIn(),
    checkout: (offer) => takeOffer(offer),
    current: () => order?.holdId ?? hold?.holdId,
    changed: () => paint(),
  });

  view.replaceChildren(
    h("h1", {}, movie.title),
    h("p", { class: "muted" }, `${show.theatreName} · ${show.screenName} · ${new Date(show.startTime).toLocaleString()} · ${money(show.price, show.currency)} a seat `, live),
    h("div", { class: "screen" }), h("div", { class: "screen-label" }, "SCREEN THIS WAY"),
    h("p", { class: "map-tools" }, zoom),
    map,
    h("div", { class: "legend" },
      h("span", {}, h("i", { style: "background:var(--free)" }), "available"),
      h("span", {}, h("i", { style: "background:var(--mine)" }), "yours"),
      h("span", {}, h("i", { style: "background:var(--held)" }), "held"),
      h("span", {}, h("i", { style: "background:var(--booked)" }), "booked")),
    wl.el,
    outcome,
    h("div", { class: "tray" }, sum, h("div", {}, best, " ", secondary, " ", action)),
  );

  const mine = () => new Set(order ? order.seatIds : hold ? hold.seatIds : wl.offered());
  const soldOut = () => seats.size > 0 && ![...seats.values()].some((b) => b.dataset.status === "AVAILABLE");
  const paint = () => {
    const own = mine();
    for (const [id, btn] of seats) {
      btn.dataset.selected = String(selected.has(id));
      btn.dataset.mine = String(own.has(id) && btn.dataset.status !== "AVAILABLE");
    }
    const price = Number(show.price);
    clearInterval(tick);
    secondary.hidden = true;
    const none = soldOut() && !hold && !order;
    wl.setSoldOut(none);
    best.hidden = Boolean(hold || order || none);
    if (order && order.status === "CONFIRMED") {
      sum.replaceChildren("Booked: ", h("strong", {}, order.seatIds.join(" ")));
      action.hidden = true;
    } else if (order) {
      action.hidden = false;
      action.disabled = false;
      action.textContent = `Pay ${money(order.amount, order.currency)}`;
      action.onclick = pay;
      secondary.hidden = false;
      secondary.textContent = "Cancel";
      secondary.onclick = cancelOrder;
      const cd = h("span", { class: "countdown", id: "countdown" });
      sum.replaceChildren("Order for ", h("strong", {}, order.seatIds.join(" ")), " · pay within ", cd);
      countdown(cd, order.expiresAt, () => { toast("The order expired."); order = null; hold = null; paint(); });
    } else if (hold) {
      action.hidden = false;
      action.disabled = false;
      action.textContent = `Book ${hold.seatIds.length} for ${money((price * hold.seatIds.length).toFixed(2), show.currency)}`;
      action.onclick = createOrder;
      secondary.hidden = false;
      secondary.textContent = "Release";
      secondary.onclick = release;
      const cd = h("span", { class: "countdown", id: "countdown" });
      sum.replaceChildren("Held ", h("strong", {}, hold.seatIds.join(" ")), " for ", cd);
      countdown(cd, hold.expiresAt, () => { toast("Your hold expired; the seats are back on sale."); hold = null; paint(); });
    } else {
      action.hidden = none;   // nothing to pick: the waiting list stands in for it
      action.disabled = selected.size === 0;
      action.textContent = selected.size ? `Hold ${selected.size} seat${selected.size > 1 ? "s" : ""}` : "Pick seats";
      action.onclick = () => holdSeats();
      sum.replaceChildren(selected.size ? h("strong", {}, [...selected].join(" ")) : none ? "Sold out: no seat left to pick." : "Tap seats to choose them.");
    }
  };
  const countdown = (el, iso, done) => {
    const end = Date.parse(iso);
    const step = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      if (left === 0) { clearInterval(tick); done(); }
    };
    step();
    tick = setInterval(step, 500);
  };

  const setStatus = (id, status) => {
    const btn = seats.get(id);
    if (!btn || btn.dataset.status === status) return;
    btn.dataset.status = status;
    btn.classList.remove("flash"); void btn.offsetWidth; btn.classList.add("flash");
    if (status !== "AVAILABLE" && selected.has(id) && !mine().has(id) && !holding) {
      selected.delete(id);
      toast(`${id} was just taken.`);
    }
  };
  const build = (snapshot) => {
    seats.clear();
    const byRow = new Map();
    for (const s of snapshot.seats) {
      const row = s.id.match(/^[A-Z]+/)[0];
      if (!byRow.has(row)) byRow.set(row, []);
      byRow.get(row).push(s);
    }
    rows.replaceChildren(...[...byRow].map(([row, list]) => h("div", { class: "row" },
      h("span", { class: "row-label" }, row),
      list.map((s) => {
        const btn = h("button", { class: "seat", "aria-label": `seat ${s.id}`, title: s.id, dataset: { seat: s.id, status: s.status },
          onclick: () => toggle(s.id) }, s.id.replace(/^[A-Z]+/, ""));
        seats.set(s.id, btn);
        return btn;
      }),
      h("span", { class: "row-label" }, row))));
    cols = Math.max(0, ...[...byRow.values()].map((list) => list.length));
    fit();
    paint();
  };
  const toggle = (id) => {
    const btn = seats.get(id);
    if (hold || order || btn.dataset.status !== "AVAILABLE") return;
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    paint();
  };
  const needSignIn = () => { if (!session.token) { toast("Sign in first (top right)."); $("#user").focus(); return true; } return false; };

  /** Holds the seats picked, or (`pick.quantity`) the best block of that
   *  many, which the server chooses and locks in one step. */
  async function holdSeats(pick) {
    const bestOf = pick?.quantity;
    if (needSignIn() || (!bestOf && selected.size === 0)) return;
    action.disabled = true;
    holding = true;
    try {
      const adm = admission.get(showId);
      const body = bestOf ? { showId, quantity: bestOf } : { showId, seatIds: [...selected] };
      hold = await api("POST", "/api/v1/holds", body, { headers: adm ? { "X-Admission-Token": adm.token } : {} });
      selected.clear();
      for (const id of hold.seatIds) setStatus(id, "HELD");
    } catch (err) {
      for (const id of selected) {
        if (seats.get(id)?.dataset.status !== "AVAILABLE") selected.delete(id);
      }
      if (err.code === "ADMISSION_REQUIRED") {
        admission.clear(showId);
        location.hash = `#/queue/${encodeURIComponent(showId)}`;
        return;
      }
      if (err.code === "SEAT_CONFLICT") {
        for (const id of err.body.error.conflicts) { selected.delete(id); }
        toast(`Taken just now: ${err.body.error.conflicts.join(", ")}`);
      } else if (err.code === "NOT_ENOUGH_SEATS") {
        const most = err.body.error.largestBlock;
        toast(most ? `No ${bestOf} seats together are left; at most ${most} together.` : "No seats are left.");
      } else toast(err.message);
    } finally {
      holding = false;
    }
    paint();
  }
  async function release() {
    try { await api("DELETE", `/api/v1/holds/${encodeURIComponent(hold.holdId)}`); } catch (err) { toast(err.message); }
    hold = null;
    paint();
  }
  async function createOrder() {
    action.disabled = true;
    try {
      order = await api("POST", "/api/v1/orders", { holdId: hold.holdId }, { headers: { "Idempotency-Key": `order-${hold.holdId}` } });
    } catch (err) { toast(err.message); if (err.code === "HOLD_EXPIRED") hold = null; }
    paint();
  }
  async function pay() {
    action.disabled = true;
    try {
      order = await api("POST", `/api/v1/orders/${order.orderId}/confirm-payment`, { paymentReference: `demo-${Date.now()}`, outcome: "SUCCESS" });
      if (order.status === "CONFIRMED") {
        outcome.replaceChildren(h("div", { class: "card ticket", id: "ticket" },
          h("p", {}, "Your ticket"), h("div", { class: "code", id: "ticket-code" }, order.ticketCode),
          h("p", {}, `${movie.title} · ${new Date(show.startTime).toLocaleString()} · seats ${order.seatIds.join(" ")}`),
          h("p", {}, `${money(order.amount, order.currency)} paid`)));
        for (const id of order.seatIds) setStatus(id, "BOOKED");
      }
    } catch (err) { toast(err.message); if (err.code === "ORDER_EXPIRED") { order = null; hold = null; } }
    paint();
  }
  /** Takes a waiting-list offer: its hold is an ordinary hold of ours, so
   *  it goes through the same order and payment as one picked on the map. */
  async function takeOffer(offer) {
    if (needSignIn() || order) return;
    selected.clear();
    hold = { holdId: offer.holdId, seatIds: offer.seatIds, expiresAt: offer.expiresAt };
    wl.refresh();
    await createOrder();
    if (!order) { hold = null; paint(); }   // not taken: the panel still offers it while it lasts
    wl.refresh();
  }
  async function cancelOrder() {
    try { await api("POST", `/api/v1/orders/${order.orderId}/cancel`); } catch (err) { toast(err.message); }
    order = null; hold = null;
    paint();
  }

  const stop = seatStream(showId, {
    onSnapshot: (snap) => { build(snap); },
    onDelta: (d) => { for (const c of d.changes) setStatus(c.seatId, c.status); paint(); },
    onState: (state) => { live.dataset.state = state; live.textContent = state === "live" ? "live" : state; },
  });
  cleanup = () => { stop(); wl.stop(); clearInterval(tick); };
}

renderSession();
route();
