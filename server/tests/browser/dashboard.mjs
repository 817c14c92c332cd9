// The dashboard in a real headless Chromium, driven by Playwright (scripts/dashboard-test.sh
// installs both and runs this). A real relay (`simrelay serve`, SQLite in a temp dir, a free
// loopback port) and real simulated phones (`simrelay sim-phones`: the phone core on a
// simulated radio, paired with the code read from the page). Nothing sleeps: each step waits
// for what the page shows, with Playwright's deadlines.
//
// It signs in (a wrong password first), pairs a phone from the pairing page, sends a message
// and watches it reach `delivered`, watches an incoming SMS appear in the open inbox, uploads
// a CSV of 50 rows and sees 50 results, checks CSRF refusal from the page's own origin, and
// takes a screenshot of each page into $SHOTS.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";

const require = createRequire(path.join(process.env.PW_DIR, "package.json"));
const { chromium } = require("playwright-core");

const BIN = process.env.SIMRELAY_BIN;
const SHOTS = process.env.SHOTS;
const ECHO = "+1555019";
const KEY = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
const LOGIN = "owner@example.com";
const PASSWORD = "correct-horse-battery";

const dir = mkdtempSync(path.join(tmpdir(), "simrelay-dashboard-"));
const children = [];
const receivers = [];
let failed = false;

function start(args, name) {
  const child = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout });
  const log = [];
  child.stderr.on("data", (d) => log.push(d.toString()));
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited early (${code ?? signal}):\n${log.join("").slice(-4000)}`);
      failed = true;
    }
  });
  return { child, lines, log };
}

function lineWith(lines, marker) {
  return new Promise((resolve, reject) => {
    const onLine = (l) => { if (l.includes(marker)) { lines.off("line", onLine); resolve(l); } };
    lines.on("line", onLine);
    lines.once("close", () => reject(new Error(`output ended before ${marker}`)));
  });
}

let stopping = false;
function stopAll() {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}

async function api(url, method, p, body) {
  const r = await fetch(url + p, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok -", what);
}

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function main() {
  // A webhook receiver on loopback (the relay refuses internal addresses unless allowed).
  const hits = [];
  const receiver = http.createServer((req, res) => { hits.push(req.url); req.resume(); res.end("ok"); });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receivers.push(receiver);
  const config = path.join(dir, "relay.toml");
  writeFileSync(config, 'webhook_allow_cidrs = ["127.0.0.1/32"]\n');
  const relay = start(["serve", "--config", config, "--listen", "127.0.0.1:0", "--data", path.join(dir, "relay"), "--api-key", KEY], "serve");
  const url = (await lineWith(relay.lines, "listening on")).split(" ").pop();
  relay.lines.on("line", () => {});
  await api(url, "POST", "/v1/users", { login: LOGIN, password: PASSWORD });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    // Nothing but the relay itself is ever fetched.
    const origins = new Set();
    page.on("request", (r) => origins.add(new URL(r.url()).origin));

    await page.goto(url + "/");
    await page.locator("#signin").waitFor();
    await shot(page, "signin");

    await page.fill("#login", LOGIN);
    await page.fill("#password", "wrong-password-123");
    await page.click("#signin-btn");
    await page.locator("#signin-error", { hasText: "Wrong login" }).waitFor();
    check(await page.locator("#nav").isHidden(), "a wrong password is refused");

    await page.fill("#password", PASSWORD);
    await page.click("#signin-btn");
    await page.locator("#nav").waitFor();
    check((await page.textContent("#who")).includes(LOGIN), "signed in with the user's password");
    const cookies = await context.cookies();
    const sc = cookies.find((c) => c.name === "simrelay_session");
    check(sc && sc.httpOnly && sc.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");

    // Pair a phone with the code the page shows.
    await page.click('a[href="#pair"]');
    await page.click("#new-code");
    const code = (await page.textContent("#pair-code")).trim();
    check(/^[A-Z0-9-]{8,}$/.test(code), "the pairing page shows a code");
    const link = await page.textContent("#pair-link");
    check(link.startsWith("simrelay://pair?") && link.includes(code), "the pairing link holds the code");
    await page.waitForFunction(() => document.querySelector("#pair-qr").naturalWidth > 0);
    check(true, "the QR code image loaded");
    await shot(page, "pair");
    // Links per phone: a bad number makes no code; a good one goes into the link.
    await page.fill("#pair-links", "17");
    await page.click("#new-code");
    await page.locator("#pair-out .error").waitFor();
    check((await page.textContent("#pair-out")).includes("from 1 to 16") && !(await page.$("#pair-code")),
      "17 links per phone is refused and makes no code");
    await page.fill("#pair-links", "2");
    await page.click("#new-code");
    await page.locator("#pair-link").waitFor();
    check(new URL((await page.textContent("#pair-link")).replace("simrelay://", "http://x/")).searchParams.get("links") === "2",
      "the pairing link carries links=2");
    start(["sim-phones", "--relay", url, "--count", "1", "--data", path.join(dir, "phones"),
      "--pairing-code", code, "--latency-ms", "200", "--report-delay-ms", "300", "--echo-prefix", ECHO], "sim-phones");

    await page.click('a[href="#phones"]');
    await page.locator("#phones-table td.online").waitFor();
    check(true, "the paired phone shows online (live, without a reload)");
    await page.locator("#sims-table tbody tr").first().waitFor();
    await shot(page, "phones");

    // Send one message and watch it reach delivered.
    await page.click('a[href="#send"]');
    await page.fill("#send-to", ECHO + "0001");
    await page.fill("#send-text", "hello from the dashboard");
    await page.locator("#send-preview", { hasText: "1 part" }).waitFor();
    await page.click("#send-btn");
    await page.click("#sent-link");
    await page.locator("#msg-state", { hasText: "delivered" }).waitFor();
    check(true, "the message reached delivered on its page");
    check(await page.locator("#msg-history tbody tr").count() >= 3, "its timeline lists each state");
    await shot(page, "message");

    // The inbox is open; an SMS arriving now appears without a reload.
    await page.click('a[href="#inbox"]');
    await page.locator("#inbox-table .sms-text", { hasText: "echo: hello from the dashboard" }).waitFor();
    await api(url, "POST", "/v1/messages", { to: [ECHO + "0002"], text: "second while watching" });
    await page.locator("#inbox-table .sms-text", { hasText: "echo: second while watching" }).waitFor();
    check(true, "an incoming SMS appeared live in the open inbox");
    await shot(page, "inbox");

    // A CSV of 50 rows: a preview of the parts, then 50 results.
    await page.click('a[href="#send"]');
    const rows = ["to,text"];
    for (let i = 0; i < 50; i++) {
      const long = i % 10 === 0 ? " " + "x".repeat(160) : "";
      rows.push(`+1555020${String(i).padStart(4, "0")},"bulk ${i}, ok${long}"`);
    }
    await page.setInputFiles("#csv-file", { name: "bulk.csv", mimeType: "text/csv", buffer: Buffer.from(rows.join("\n")) });
    await page.locator("#csv-table tbody tr").nth(49).waitFor();
    check(await page.locator("#csv-table tbody tr").count() === 50, "the CSV preview lists 50 rows");
    check((await page.textContent("#csv-table tbody tr:first-child")).includes("2 (gsm7)"), "the preview counts parts");
    await page.click("#csv-send");
    await page.locator("#csv-summary", { hasText: "50 accepted, 0 refused" }).waitFor();
    check(await page.locator("#csv-table td.result.ok a").count() === 50, "50 per-row results, each a message id");
    await shot(page, "send");

    // CSRF: a request from the page's own origin without the token is refused.
    const status = await page.evaluate(async () => (await fetch("/v1/messages", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ to: ["+15550001111"], text: "no token" }),
    })).status);
    check(status === 403, "a state-changing request without the CSRF token is refused");

    await page.click('a[href="#messages"]');
    await page.locator("#messages-table tbody tr").nth(50).waitFor();
    await page.fill("#f-to", ECHO + "0001");
    await page.click("#f-search");
    await page.waitForFunction(() => document.querySelectorAll("#messages-table tbody tr").length === 1);
    check(true, "the message search filters by number");
    await page.fill("#f-to", "");
    await page.click("#f-search");
    await page.locator("#messages-table tbody tr").nth(50).waitFor();
    await shot(page, "messages");

    await page.click('a[href="#charts"]');
    await page.waitForFunction(() => [...document.querySelectorAll("#chart-hours rect.delivered")]
      .some((r) => Number(r.getAttribute("height")) > 0));
    check(true, "the charts draw this hour's delivered messages");
    await shot(page, "charts");

    await page.click('a[href="#webhooks"]');
    const hook = `http://127.0.0.1:${receiver.address().port}/hooks/sms`;
    await page.fill("#wh-url", hook);
    await page.click("#wh-create");
    await page.locator("#webhooks-table td", { hasText: hook }).waitFor();
    await page.click("#webhooks-table button:text('Test ping')");
    await page.locator("#wh-log .ok", { hasText: "Ping answered 200" }).waitFor();
    check(hits.length >= 1, "a webhook made on the page, pinged from the page, reached its receiver");
    await page.click("#webhooks-table button:text('Delivery log')");
    await page.locator("#wh-log table tbody tr").first().waitFor();
    await shot(page, "webhooks");

    await page.click('a[href="#pools"]');
    await page.locator("#sim-settings table tbody tr").first().waitFor();
    await shot(page, "pools");

    await page.click('a[href="#keys"]');
    await page.fill("#key-name", "qa-pipeline");
    await page.click("#key-create");
    await page.locator("#new-key").waitFor();
    await shot(page, "keys");

    await page.click('a[href="#api"]');
    await page.locator(".op").nth(29).waitFor();
    check((await page.textContent("#page")).includes("/v1/messages/{id}/history"), "the API reference renders /openapi.json");
    await shot(page, "api");

    await page.click("#signout");
    await page.locator("#signin").waitFor();
    await page.reload();
    await page.locator("#signin").waitFor();
    check(await page.locator("#nav").isHidden(), "signed out, a reload shows the sign-in again");

    check(pageErrors.length === 0, "no script errors: " + pageErrors.join("; "));
    check([...origins].every((o) => o === url), "nothing fetched from elsewhere: " + [...origins].join(", "));
  } finally {
    await browser.close();
  }
}

try {
  await main();
  if (failed) throw new Error("a process ended early");
  console.log("dashboard: all checks passed");
} catch (e) {
  console.error("dashboard:", e);
  process.exitCode = 1;
} finally {
  stopAll();
  for (const r of receivers) r.close();
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null)));
  rmSync(dir, { recursive: true, force: true });
}
