// simrelay dashboard: one page over the relay's own /v1 API, signed in by a session cookie.
// Plain DOM, no framework, nothing fetched from elsewhere. Every text from the relay goes in
// through textContent (never innerHTML), so a message body cannot become markup.
"use strict";

const $ = (sel) => document.querySelector(sel);
let session = null;
let timer = null;

// ---- helpers -------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...nodes(children));
  return e;
}

// Children as nodes; null, undefined and false (an `a && b` that did not hold) are left out,
// as the DOM would otherwise show them as text.
function nodes(children) {
  return children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

// Replaces `parent`'s children.
function put(parent, ...children) {
  parent.replaceChildren(...nodes(children));
  return parent;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) {
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, accept) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session && method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (accept === "blob" && r.ok) return r.blob();
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = (json && json.error) || {};
    if (r.status === 401 && session && path !== "/ui/session") signedOut();
    throw new ApiError(r.status, e.code || "http_" + r.status, e.message || r.statusText);
  }
  return json;
}

// Items of a paged list (oldest first), following next_cursor from `cursor` for at most
// `pages` pages; `cursor` in the answer goes on from there (null at the end).
async function pages(path, query, pages = 5, cursor = null) {
  const items = [];
  for (let i = 0; i < pages; i++) {
    const q = new URLSearchParams(query);
    q.set("limit", "100");
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", path + "?" + q);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return { items, cursor };
}

const fmt = (t) => (t ? new Date(t).toLocaleString() : "—");
const ago = (t) => {
  if (!t) return "never";
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  return s < 60 ? `${Math.max(s, 0)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : fmt(t);
};
const stateCell = (s) => el("td", { class: "state state-" + s, text: s });
const hoursAgo = (h) => new Date(Date.now() - h * 3600e3).toISOString();

function table(headers, rows, attrs) {
  return el("table", attrs, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows));
}

function errorBox(e) {
  return el("p", { class: "error", role: "alert", text: `${e.message} (${e.code || "error"})` });
}

// Runs `fn` now and every `ms` while this page is shown.
function live(fn, ms = 2000) {
  const tick = async () => {
    try { await fn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
  };
  tick();
  timer = setInterval(tick, ms);
}

function can(scope) {
  return session.scopes.includes(scope) || session.scopes.includes("admin");
}

// ---- sign-in -------------------------------------------------------------------------------

function signedOut() {
  session = null;
  clearInterval(timer);
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#page").hidden = true;
  $("#who").textContent = "";
  $("#signin").hidden = false;
}

function signedIn(s) {
  session = s;
  $("#signin").hidden = true;
  $("#nav").hidden = false;
  $("#signout").hidden = false;
  $("#page").hidden = false;
  $("#who").textContent = (s.login || "API key") + " · " + s.scopes.join(", ");
  route();
}

async function signIn(ev) {
  ev.preventDefault();
  const key = $("#key").value.trim();
  const body = key ? { key } : { login: $("#login").value.trim(), password: $("#password").value };
  $("#signin-error").textContent = "";
  try {
    const s = await api("POST", "/ui/session", body);
    $("#password").value = "";
    $("#key").value = "";
    signedIn(s);
  } catch (e) {
    $("#signin-error").textContent =
      e.status === 401 ? "Wrong login, password or key." : `${e.message} (${e.code})`;
  }
}

// ---- pages ---------------------------------------------------------------------------------

const PAGES = {
  phones: phonesPage,
  pair: pairPage,
  messages: messagesPage,
  message: messagePage,
  send: sendPage,
  inbox: inboxPage,
  charts: chartsPage,
  webhooks: webhooksPage,
  pools: poolsPage,
  keys: keysPage,
  api: apiPage,
};

function route() {
  if (!session) return;
  clearInterval(timer);
  const [name, arg] = (location.hash.slice(1) || "phones").split("/");
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#" + name);
  }
  const page = $("#page");
  put(page);
  const render = PAGES[name] || phonesPage;
  Promise.resolve(render(page, arg && decodeURIComponent(arg))).catch((e) => page.append(errorBox(e)));
}

function phonesPage(page) {
  page.append(el("h1", { text: "Phones" }));
  const phonesBox = el("div", { id: "phones" });
  const simsBox = el("div", { id: "sims" });
  page.append(phonesBox, el("h2", { text: "SIMs" }), simsBox);
  live(async () => {
    const phones = (await api("GET", "/v1/phones")).items;
    put(phonesBox, phones.length === 0
      ? el("p", { class: "muted" }, "No phone yet. ", el("a", { href: "#pair", text: "Pair one" }), ".")
      : table(["Phone", "Link", "Last seen", "Queue", "Outstanding", "Battery", "SIMs (sent today / pace)", ""],
        phones.map((p) => el("tr", { "data-phone": p.id },
          el("td", {}, el("div", { text: p.name || p.id }), el("div", { class: "muted mono", text: p.id })),
          el("td", { class: p.online ? "online" : "offline", text: p.online ? "online" : "offline" }),
          el("td", { text: ago(p.last_seen) }),
          el("td", { class: "queue", text: p.queue_depth ?? "—" }),
          el("td", { text: p.outstanding }),
          el("td", { text: p.battery == null ? "—" : `${p.battery}%${p.charging ? " ⚡" : ""}` }),
          el("td", {}, p.sims.map((s) => el("div", { class: "sim",
            text: `slot ${s.slot} ${s.carrier || ""}: ${s.sent_today} / ${s.parts_per_minute} per min` }))),
          el("td", {}, can("phones") && el("button", { class: "plain", onclick: () => removePhone(p) }, "Remove")),
        )), { id: "phones-table" }));
    const report = await api("GET", "/v1/sims");
    put(simsBox, simTable(report.sims));
  });
}

function simTable(sims) {
  return table(["SIM", "Link", "Health", "Pace", "Queue parts", "Routed today", "Cap", "Hours", "Failures"],
    sims.map((s) => el("tr", {},
      el("td", { class: "mono", text: `${s.phone} #${s.sub_id}` }),
      el("td", { class: s.online ? "online" : "offline", text: s.online ? "online" : "offline" }),
      el("td", { class: s.state, text: s.state }),
      el("td", { text: `${s.parts_per_minute}/min (${Math.round(s.pace_utilisation * 100)}%)` }),
      el("td", { text: s.queue_parts }),
      el("td", { text: s.routed_today }),
      el("td", { text: s.daily_cap ?? "—" }),
      el("td", { text: s.hours || "any" }),
      el("td", { text: Object.entries(s.failures || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "—" }),
    )), { id: "sims-table" });
}

async function removePhone(p) {
  if (!confirm(`Remove ${p.name || p.id}? Its queued messages fail over to other phones.`)) return;
  try { await api("DELETE", "/v1/phones/" + encodeURIComponent(p.id)); } catch (e) { alert(e.message); }
}

// The app's pairing link; `links` (1-16, the most links to a cluster's nodes) only when set.
function pairLink(c, links) {
  const q = new URLSearchParams({ url: c.link_url, code: c.code });
  if (c.tls_fingerprint) q.set("pin", c.tls_fingerprint);
  if (links) q.set("links", links);
  return "simrelay://pair?" + q;
}

const MAX_LINKS = 16;

function pairPage(page) {
  page.append(el("h1", { text: "Pair a phone" }),
    el("p", {}, "Make a one-time code, then scan the QR code with the phone's camera (it opens the " +
      "simrelay app with everything filled in), or type the relay URL and the code in the app."));
  const out = el("div", { id: "pair-out" });
  const links = el("input", { id: "pair-links", type: "number", min: 1, max: MAX_LINKS, placeholder: "3" });
  const make = async () => {
    put(out);
    const n = links.value.trim();
    if (n && !(/^[0-9]+$/.test(n) && Number(n) >= 1 && Number(n) <= MAX_LINKS)) {
      out.append(errorBox({ message: `links per phone must be a number from 1 to ${MAX_LINKS}`, code: "invalid_links" }));
      return;
    }
    try {
      const c = await api("POST", "/v1/pairing-codes", {});
      const link = pairLink(c, n && String(Number(n)));
      const img = el("img", { id: "pair-qr", alt: "QR code of the pairing link", width: 240, height: 240 });
      const blob = await api("POST", "/ui/qr", { text: link }, "blob");
      img.src = URL.createObjectURL(blob);
      out.append(el("div", { class: "card" },
        el("div", { class: "code", id: "pair-code", text: c.code }),
        el("p", { class: "muted", text: `Valid until ${fmt(c.expires_at)}. Relay: ` },
          el("span", { class: "mono", id: "pair-url", text: c.link_url })),
        c.tls_fingerprint && el("p", { class: "muted" }, "Certificate SHA-256: ",
          el("span", { class: "mono", id: "pair-pin", text: c.tls_fingerprint })),
        img,
        el("p", { class: "muted" }, "Link: ", el("span", { class: "mono", id: "pair-link", text: link }))));
    } catch (e) { out.append(errorBox(e)); }
  };
  page.append(el("p", {}, el("label", { for: "pair-links" }, "Links per phone to the cluster's relay nodes " +
      "(several nodes only; empty: the app's default of 3) "), links),
    el("button", { id: "new-code", onclick: make }, "New pairing code"), out);
}

const STATES = ["", "pending", "cancelling", "queued", "sending", "sent", "delivered", "failed",
  "expired", "cancelled", "unknown", "suppressed"];

function messagesPage(page) {
  page.append(el("h1", { text: "Messages" }));
  const to = el("input", { id: "f-to", placeholder: "+15550001234" });
  const state = el("select", { id: "f-state" }, STATES.map((s) => el("option", { value: s, text: s || "any state" })));
  const since = el("select", { id: "f-since" },
    [[1, "last hour"], [24, "last 24 hours"], [168, "last 7 days"]].map(([h, t]) =>
      el("option", { value: h, text: t, selected: h === 24 })));
  const box = el("div", { id: "messages" });
  const rows = el("tbody", {});
  const more = el("button", { id: "f-more", class: "plain", type: "button", hidden: true }, "More");
  let query = null, cursor = null, generation = 0;
  const row = (m) => el("tr", { "data-id": m.id },
    el("td", {}, el("a", { href: "#message/" + encodeURIComponent(m.id), text: fmt(m.created_at) })),
    stateCell(m.state),
    el("td", { text: m.recipients.map((r) => r.to).join(", ") }),
    el("td", { text: m.text ?? `(${m.text_withheld})` }),
    el("td", { text: m.recipients.reduce((n, r) => n + r.parts, 0) }),
    el("td", { class: "mono", text: m.phone || "" }));
  // The next 500 of the search, oldest first (the list's order), appended.
  const load = async () => {
    const mine = generation;
    try {
      const page = await pages("/v1/messages", query, 5, cursor);
      if (mine !== generation) return; // a newer search started meanwhile
      cursor = page.cursor;
      rows.append(...page.items.map(row));
      more.hidden = !cursor;
    } catch (e) { put(box, errorBox(e)); }
  };
  more.addEventListener("click", load);
  const search = async () => {
    query = { since: hoursAgo(Number(since.value)) };
    if (to.value.trim()) query.to = to.value.trim();
    if (state.value) query.state = state.value;
    cursor = null;
    generation++;
    put(rows);
    put(box, el("p", { class: "muted", text: "Oldest first within the time chosen." }),
      el("table", { id: "messages-table" }, el("thead", {}, el("tr", {},
        ["Created", "State", "To", "Text", "Parts", "Phone"].map((h) => el("th", { text: h })))), rows), more);
    await load();
  };
  page.append(el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); search(); } },
    el("label", {}, "To ", to), el("label", {}, "State ", state), el("label", {}, "Time ", since),
    el("button", { id: "f-search", type: "submit" }, "Search")), box);
  search();
}

function messagePage(page, id) {
  page.append(el("h1", {}, "Message ", el("span", { class: "mono", text: id })));
  const head = el("div", {});
  const body = el("div", {});
  page.append(head, body);
  live(async () => {
    const m = await api("GET", "/v1/messages/" + encodeURIComponent(id));
    const h = await api("GET", `/v1/messages/${encodeURIComponent(id)}/history`);
    put(head, 
      el("p", {}, "State: ", el("strong", { id: "msg-state", class: "state-" + m.state, text: m.state }),
        ` · created ${fmt(m.created_at)} · updated ${fmt(m.updated_at)}`),
      el("p", { text: m.text ?? `(text withheld: ${m.text_withheld})` }),
      can("send") && !["delivered", "failed", "expired", "cancelled", "unknown", "sent", "suppressed"].includes(m.state)
        ? el("button", { class: "plain", onclick: () => api("DELETE", "/v1/messages/" + encodeURIComponent(id)).catch((e) => alert(e.message)) }, "Cancel")
        : null);
    put(body, 
      el("h2", { text: "Recipients" }),
      table(["#", "To", "State", "Parts sent / delivered", "Phone / SIM", "Error"],
        m.recipients.map((r) => el("tr", {},
          el("td", { text: r.idx }), el("td", { text: r.to }), stateCell(r.state),
          el("td", { text: `${r.parts_sent} / ${r.parts_delivered} of ${r.parts}` }),
          el("td", { class: "mono", text: r.phone ? `${r.phone} #${r.sim}` : "—" }),
          el("td", { text: r.error ? `${r.error} (${r.code})` : "" }))), { id: "msg-recipients" }),
      el("h2", { text: "Timeline" }),
      table(["At", "Recipient", "State", "Parts sent / delivered", "Phone / SIM", "Error"],
        h.items.map((x) => el("tr", {},
          el("td", { text: fmt(x.at) }), el("td", { text: x.idx }), stateCell(x.state),
          el("td", { text: `${x.parts_sent} / ${x.parts_delivered}` }),
          el("td", { class: "mono", text: x.phone ? `${x.phone} #${x.sim}` : "—" }),
          el("td", { text: x.error ? `${x.error} (${x.code})` : "" }))), { id: "msg-history" }));
    if (["delivered", "failed", "expired", "cancelled", "suppressed"].includes(m.state)) clearInterval(timer);
  });
}

// CSV of `to,text` rows (a header row naming them is skipped); quotes as RFC 4180.
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = "";
      if (row.some((f) => f.trim() !== "")) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== "")) rows.push(row);
  if (rows.length && rows[0][0].trim().toLowerCase() === "to") rows.shift();
  return rows.map((r) => ({ to: (r[0] || "").trim(), text: r.slice(1).join(",") }));
}

function sendPage(page) {
  page.append(el("h1", { text: "Send" }));
  if (!can("send")) { page.append(el("p", { class: "error", text: "This key may not send (it lacks the send scope)." })); return; }
  const to = el("textarea", { id: "send-to", placeholder: "+15550001234, +15550001235" });
  const text = el("textarea", { id: "send-text" });
  const preview = el("p", { id: "send-preview", class: "muted" });
  const result = el("div", { id: "send-result" });
  let debounce = null;
  text.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(async () => {
      if (!text.value) { preview.textContent = ""; return; }
      const p = (await api("POST", "/ui/preview", { texts: [text.value] })).items[0];
      preview.textContent = `${p.units} characters, ${p.encoding}, ${p.parts} part${p.parts === 1 ? "" : "s"}`;
    }, 200);
  });
  const send = async (ev) => {
    ev.preventDefault();
    put(result);
    const numbers = to.value.split(/[\s,;]+/).filter(Boolean);
    try {
      const m = await api("POST", "/v1/messages", { to: numbers, text: text.value });
      result.append(el("p", { class: "ok" }, "Accepted: ",
        el("a", { id: "sent-link", href: "#message/" + encodeURIComponent(m.id), text: m.id }), ` (${m.state})`));
    } catch (e) { result.append(errorBox(e)); }
  };
  page.append(el("form", { onsubmit: send },
    el("label", {}, "To (one or more numbers)", to), el("label", {}, "Text", text), preview,
    el("button", { id: "send-btn", type: "submit" }, "Send")), result);

  page.append(el("h2", { text: "Bulk send from a CSV file" }),
    el("p", { class: "muted", text: "Rows of to,text (a header row is optional). Check the preview, then send." }));
  const file = el("input", { id: "csv-file", type: "file", accept: ".csv,text/csv" });
  const box = el("div", { id: "csv" });
  file.addEventListener("change", async () => {
    put(box);
    const rows = parseCsv(await file.files[0].text());
    if (rows.length === 0) { box.append(el("p", { class: "error", text: "The file has no rows." })); return; }
    if (rows.length > 1000) { box.append(el("p", { class: "error", text: "At most 1000 rows at once." })); return; }
    let parts;
    try { parts = (await api("POST", "/ui/preview", { texts: rows.map((r) => r.text) })).items; }
    catch (e) { box.append(errorBox(e)); return; }
    const cells = rows.map(() => el("td", { class: "result", text: "not sent" }));
    const total = parts.reduce((n, p) => n + p.parts, 0);
    const go = el("button", { id: "csv-send", type: "button" }, `Send ${rows.length} messages (${total} parts)`);
    go.addEventListener("click", async () => {
      go.disabled = true;
      let ok = 0;
      for (let i = 0; i < rows.length; i++) {
        try {
          const m = await api("POST", "/v1/messages", { to: [rows[i].to], text: rows[i].text });
          put(cells[i], el("a", { href: "#message/" + encodeURIComponent(m.id), text: m.id }));
          cells[i].className = "result ok";
          ok++;
        } catch (e) {
          cells[i].textContent = `${e.message} (${e.code})`;
          cells[i].className = "result error";
        }
      }
      box.append(el("p", { id: "csv-summary", text: `${ok} accepted, ${rows.length - ok} refused.` }));
    });
    box.append(table(["#", "To", "Text", "Parts", "Result"], rows.map((r, i) => el("tr", {},
      el("td", { text: i + 1 }), el("td", { text: r.to }), el("td", { text: r.text }),
      el("td", { text: `${parts[i].parts} (${parts[i].encoding})` }), cells[i])), { id: "csv-table" }), go);
  });
  page.append(file, box);
}

function inboxPage(page) {
  page.append(el("h1", { text: "Inbox" }), el("p", { class: "muted", text: "Incoming SMS of the last 24 hours, newest first; new ones appear as they arrive." }));
  const box = el("div", { id: "inbox" });
  page.append(box);
  const seen = new Map();
  let since = hoursAgo(24);
  live(async () => {
    const { items } = await pages("/v1/inbox", { since });
    for (const s of items) seen.set(s.id, s);
    const all = [...seen.values()].sort((a, b) => Date.parse(b.stored_at) - Date.parse(a.stored_at));
    if (all.length) since = all[0].stored_at;
    put(box, all.length === 0 ? el("p", { class: "muted", text: "Nothing received yet." })
      : table(["Received", "From", "Text", "Phone / SIM"], all.map((s) => el("tr", { "data-id": s.id },
        el("td", { text: fmt(s.received_at) }), el("td", { text: s.from }), el("td", { class: "sms-text", text: s.text }),
        el("td", { class: "mono", text: `${s.phone} #${s.sim ?? "?"}` }))), { id: "inbox-table" }));
  });
}

function chartsPage(page) {
  page.append(el("h1", { text: "Charts" }),
    el("p", { class: "legend" }, el("span", { class: "sent", text: "■ sent" }),
      el("span", { class: "delivered", text: "■ delivered" }), el("span", { class: "failed", text: "■ failed" }),
      el("span", { class: "muted", text: "Recipients by the hour of their last change, last 24 hours." })));
  const hours = el("div", { id: "chart-hours" });
  const sims = el("div", { id: "chart-sims" });
  page.append(el("h2", { text: "Per hour" }), hours, el("h2", { text: "Per SIM" }), sims);
  live(async () => {
    const s = await api("GET", "/ui/stats?hours=24");
    put(hours, bars(s.hours.map((h) => [new Date(h.hour).getHours() + "h", h])));
    put(sims, s.sims.length ? bars(s.sims.map((x) => [x.phone ? `${x.phone.slice(0, 8)} #${x.sub_id}` : "no SIM", x]))
      : el("p", { class: "muted", text: "Nothing sent in the last 24 hours." }));
  }, 30000);
}

function bars(groups) {
  const W = 960, H = 200, pad = 24;
  const max = Math.max(1, ...groups.map(([, g]) => Math.max(g.sent, g.delivered, g.failed)));
  const gw = (W - pad) / Math.max(groups.length, 1);
  const bw = Math.min(24, Math.max(2, gw / 4));
  const out = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H + 20}`, role: "img" });
  out.append(svg("text", { x: 0, y: 10 }, String(max)));
  groups.forEach(([label, g], i) => {
    const x = pad + i * gw;
    ["sent", "delivered", "failed"].forEach((k, j) => {
      const h = (g[k] / max) * (H - 12);
      out.append(svg("rect", { class: k, x: x + j * bw, y: H - h, width: bw - 1, height: h },
        svg("title", {}, `${label} ${k}: ${g[k]}`)));
    });
    out.append(svg("text", { x, y: H + 14 }, label));
  });
  return out;
}

function webhooksPage(page) {
  page.append(el("h1", { text: "Webhooks" }));
  const list = el("div", { id: "webhooks" });
  const log = el("div", { id: "wh-log" });
  const url = el("input", { id: "wh-url", placeholder: "https://example.com/hooks/sms", size: 40 });
  const events = el("input", { id: "wh-events", value: "message.delivered,message.failed,message.received", size: 50 });
  const out = el("div", {});
  const load = async () => {
    const hooks = (await api("GET", "/v1/webhooks")).items;
    put(list, hooks.length === 0 ? el("p", { class: "muted", text: "No webhooks." })
      : table(["URL", "Events", "Created", ""], hooks.map((h) => el("tr", {},
        el("td", { class: "mono", text: h.url }), el("td", { text: h.events.join(", ") }), el("td", { text: fmt(h.created_at) }),
        el("td", {},
          el("button", { class: "plain", onclick: () => ping(h) }, "Test ping"), " ",
          el("button", { class: "plain", onclick: () => deliveries(h) }, "Delivery log"), " ",
          el("button", { class: "plain", onclick: async () => { if (confirm("Delete this webhook?")) { await api("DELETE", "/v1/webhooks/" + h.id).catch((e) => alert(e.message)); load(); } } }, "Delete")))),
      { id: "webhooks-table" }));
  };
  const ping = async (h) => {
    try {
      const p = await api("POST", `/v1/webhooks/${h.id}/ping`, {});
      put(log, el("p", { class: p.ok ? "ok" : "error", text: p.ok ? `Ping answered ${p.status} in ${p.duration_ms} ms.` : `Ping failed: ${p.error || p.status}` }));
    } catch (e) { put(log, errorBox(e)); }
  };
  const deliveries = async (h) => {
    const items = (await api("GET", `/v1/webhooks/${h.id}/deliveries`)).items;
    put(log, el("h2", { text: "Delivery log" }), table(["At", "Event", "Status", "Time", "State", "Error", ""],
      items.map((a) => el("tr", {}, el("td", { text: fmt(a.at) }), el("td", { text: a.event }),
        el("td", { text: a.status ?? "—" }), el("td", { text: a.duration_ms + " ms" }),
        el("td", { text: a.delivery_state || "" }), el("td", { text: a.error || "" }),
        el("td", {}, el("button", { class: "plain", onclick: async () => {
          try { const r = await api("POST", `/v1/webhooks/${h.id}/deliveries/${a.event_id}/redeliver`, {}); alert("Queued again: " + r.delivery_state); } catch (e) { alert(e.message); }
        } }, "Redeliver"))))));
  };
  const create = async (ev) => {
    ev.preventDefault();
    put(out);
    try {
      const h = await api("POST", "/v1/webhooks", { url: url.value.trim(), events: events.value.split(",").map((s) => s.trim()).filter(Boolean) });
      out.append(el("p", { class: "secret" }, "Signing secret (shown once): ", el("span", { class: "mono", text: h.secret })));
      url.value = "";
      load();
    } catch (e) { out.append(errorBox(e)); }
  };
  page.append(list, el("h2", { text: "New webhook" }),
    el("form", { class: "row", onsubmit: create }, el("label", {}, "URL ", url), el("label", {}, "Events ", events),
      el("button", { id: "wh-create", type: "submit" }, "Create")), out, log);
  return load();
}

function poolsPage(page) {
  page.append(el("h1", { text: "Pools & SIMs" }));
  const pools = el("div", { id: "pools" });
  const sims = el("div", { id: "sim-settings" });
  const out = el("div", {});
  const name = el("input", { id: "pool-name", placeholder: "otp" });
  const members = el("input", { id: "pool-members", placeholder: "PHONE_ID#SUB_ID, ...", size: 60 });
  const load = async () => {
    const list = (await api("GET", "/v1/pools")).items;
    put(pools, list.length === 0 ? el("p", { class: "muted", text: "No pools: messages may use any SIM." })
      : table(["Pool", "SIMs", "Prefixes", "Sticky", ""], list.map((p) => el("tr", {},
        el("td", { text: p.name }), el("td", { class: "mono", text: p.members.map((m) => `${m.phone}#${m.sub_id}`).join(", ") }),
        el("td", { text: p.prefixes.map((r) => r.prefix).join(", ") || "—" }), el("td", { text: p.sticky ? "yes" : "no" }),
        el("td", {}, el("button", { class: "plain", onclick: async () => { if (confirm("Delete pool " + p.name + "?")) { await api("DELETE", "/v1/pools/" + encodeURIComponent(p.name)).catch((e) => alert(e.message)); load(); } } }, "Delete"))))));
    const report = await api("GET", "/v1/sims");
    put(sims, table(["SIM", "Daily cap", "Hours (HH:MM-HH:MM)", "UTC offset (min)", ""], report.sims.map((s) => {
      const cap = el("input", { value: s.daily_cap ?? "", size: 6, placeholder: "none" });
      const hours = el("input", { value: s.hours ?? "", size: 12, placeholder: "any" });
      const off = el("input", { value: s.utc_offset_min, size: 5 });
      const save = async () => {
        try {
          await api("PATCH", `/v1/sims/${encodeURIComponent(s.phone)}/${s.sub_id}`, {
            daily_cap: cap.value.trim() ? Number(cap.value) : null,
            hours: hours.value.trim() || null,
            utc_offset_min: Number(off.value || 0),
          });
          load();
        } catch (e) { alert(e.message); }
      };
      return el("tr", {}, el("td", { class: "mono", text: `${s.phone}#${s.sub_id}` }), el("td", {}, cap), el("td", {}, hours),
        el("td", {}, off), el("td", {}, el("button", { class: "plain", onclick: save }, "Save")));
    })));
  };
  const create = async (ev) => {
    ev.preventDefault();
    put(out);
    const m = members.value.split(/[\s,]+/).filter(Boolean).map((x) => {
      const [phone, sub] = x.split("#");
      return { phone, sub_id: Number(sub) };
    });
    try { await api("POST", "/v1/pools", { name: name.value.trim(), members: m }); name.value = ""; members.value = ""; load(); }
    catch (e) { out.append(errorBox(e)); }
  };
  page.append(pools, el("h2", { text: "New pool" }), el("form", { class: "row", onsubmit: create },
    el("label", {}, "Name ", name), el("label", {}, "SIMs ", members), el("button", { type: "submit" }, "Create")), out,
  el("h2", { text: "SIM settings" }), sims);
  return load();
}

function keysPage(page) {
  page.append(el("h1", { text: "API keys" }));
  const list = el("div", { id: "keys" });
  const out = el("div", {});
  const name = el("input", { id: "key-name", placeholder: "qa-pipeline" });
  const scopes = ["send", "read", "phones", "webhooks"].map((s) =>
    el("label", {}, el("input", { type: "checkbox", value: s, checked: s === "send" || s === "read" }), " " + s));
  const load = async () => {
    const keys = (await api("GET", "/v1/keys")).items;
    put(list, table(["Name", "Prefix", "Scopes", "Created", "Last used", ""], keys.map((k) => el("tr", {},
      el("td", { text: k.name }), el("td", { class: "mono", text: k.prefix || "" }), el("td", { text: k.scopes.join(", ") }),
      el("td", { text: fmt(k.created_at) }), el("td", { text: ago(k.last_used_at) }),
      el("td", {}, k.revoked_at ? el("span", { class: "muted", text: "revoked " + fmt(k.revoked_at) })
        : el("button", { class: "plain", onclick: async () => { if (confirm(`Revoke ${k.name}? Programs using it stop at once.`)) { await api("DELETE", "/v1/keys/" + k.id).catch((e) => alert(e.message)); load(); } } }, "Revoke"))))));
  };
  const create = async (ev) => {
    ev.preventDefault();
    put(out);
    try {
      const k = await api("POST", "/v1/keys", { name: name.value.trim(), scopes: scopes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) });
      out.append(el("p", { class: "secret" }, "New key (shown once): ", el("span", { class: "mono", id: "new-key", text: k.secret })));
      name.value = "";
      load();
    } catch (e) { out.append(errorBox(e)); }
  };
  page.append(list, el("h2", { text: "New key" }), el("form", { class: "row", onsubmit: create },
    el("label", {}, "Name ", name), ...scopes, el("button", { type: "submit", id: "key-create" }, "Create")), out);
  return load();
}

async function apiPage(page) {
  page.append(el("h1", { text: "API reference" }));
  let doc;
  try { doc = await api("GET", "/openapi.json"); }
  catch (e) { page.append(el("p", { class: "muted", text: "This relay serves no OpenAPI description." })); return; }
  page.append(el("p", {}, `${doc.info.title} ${doc.info.version} · OpenAPI ${doc.openapi} · `,
    el("a", { href: "/openapi.json", text: "openapi.json" })));
  const ref = (s) => (s && s.$ref ? s.$ref.split("/").pop() : s && s.type ? s.type : "");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || typeof op !== "object" || !op.responses) continue;
      const params = (op.parameters || []).map((p) => `${p.name} (${p.in}${p.required ? ", required" : ""})`);
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      page.append(el("div", { class: "op" },
        el("div", {}, el("span", { class: "method", text: method.toUpperCase() }), el("span", { class: "mono", text: path })),
        op.summary && el("div", { text: op.summary }),
        op.description && el("div", { class: "muted", text: op.description }),
        params.length ? el("div", { class: "muted", text: "Parameters: " + params.join(", ") }) : null,
        body ? el("div", { class: "muted", text: "Body: " + ref(body.schema) }) : null,
        el("div", { class: "muted", text: "Responses: " + Object.entries(op.responses).map(([c, r]) => {
          const j = r.content && r.content["application/json"];
          return c + (j ? " " + ref(j.schema) : "");
        }).join(", ") })));
    }
  }
}

// ---- start ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("#signin-form").addEventListener("submit", signIn);
  $("#signout").addEventListener("click", async () => {
    try { await api("DELETE", "/ui/session"); } catch (e) { /* already ended */ }
    signedOut();
  });
  window.addEventListener("hashchange", route);
  try { signedIn(await api("GET", "/ui/session")); } catch (e) { signedOut(); }
});
