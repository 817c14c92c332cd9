// The published JS client `android-sms-gateway` (3.0.0), unchanged, against a real relay.
// It ships no HTTP client: this one is `fetch`, throwing on a non-2xx status and giving
// `null` for an empty body. `node js_client.mjs send` registers a webhook and sends with the
// legacy `message` field (printing the message id); `node js_client.mjs check ID` then
// covers the rest of its methods. Assertion failures exit non-zero.
import assert from "node:assert/strict";
import Client, { ProcessState, HealthStatus } from "android-sms-gateway";

const { SIMRELAY_COMPAT_URL: base, SIMRELAY_LOGIN: login, SIMRELAY_PASSWORD: password,
        SIMRELAY_RECEIVER: receiver } = process.env;

class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function call(method, url, headers, body) {
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (text) {
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  }
  const parsed = text ? JSON.parse(text) : null;
  if (!res.ok) throw new HttpError(res.status, parsed);
  return parsed;
}

const http = {
  get: (url, headers) => call("GET", url, headers),
  post: (url, body, headers) => call("POST", url, headers, body),
  put: (url, body, headers) => call("PUT", url, headers, body),
  patch: (url, body, headers) => call("PATCH", url, headers, body),
  delete: (url, headers) => call("DELETE", url, headers),
};

const client = new Client(login, password, http, base);

async function send() {
  assert.equal((await client.getHealth()).status, HealthStatus.Pass);
  const hook = await client.registerWebhook({ id: "js-delivered", url: receiver, event: "sms:delivered" });
  assert.equal(hook.event, "sms:delivered");
  assert.ok((await client.getWebhooks()).some((h) => h.id === "js-delivered"));
  const state = await client.send(
    { id: "js-legacy", message: "hello from js", phoneNumbers: ["+15550200001", "+15550200002"] },
    { skipPhoneValidation: false },
  );
  assert.equal(state.id, "js-legacy");
  assert.equal(state.recipients.length, 2);
  console.log(JSON.stringify({ id: state.id }));
}

async function check(id) {
  const state = await client.getState(id);
  assert.equal(state.state, ProcessState.Delivered);
  assert.deepEqual(state.recipients.map((r) => r.state), ["Delivered", "Delivered"]);
  await client.deleteWebhook("js-delivered");
  assert.ok(!(await client.getWebhooks()).some((h) => h.id === "js-delivered"));
  const devices = await client.getDevices();
  assert.ok(devices.length >= 1 && devices.every((d) => d.id && d.name && d.lastSeen));
  const settings = await client.patchSettings({ logs: { lifetime_days: 7 } });
  assert.equal(settings.logs.lifetime_days, 7);
  assert.equal((await client.getSettings()).logs.lifetime_days, 7);
  const put = await client.updateSettings({ logs: { lifetime_days: 9 }, ping: { interval_seconds: 30 } });
  assert.equal(put.ping.interval_seconds, 30);
  const logs = await client.getLogs(new Date(Date.now() - 3600_000), new Date(Date.now() + 1000));
  assert.ok(logs.some((e) => e.message.includes(id)));
  assert.equal(
    await client.exportInbox({ deviceId: devices[0].id, since: new Date(Date.now() - 3600_000), until: new Date() }),
    null,
  );
  await assert.rejects(client.getState("no-such-js-message"), (e) => e.status === 404);
  await assert.rejects(client.send({ message: "x", phoneNumbers: ["12"] }), (e) => e.status === 400);
  const wrong = new Client(login, "not-the-password", http, base);
  await assert.rejects(wrong.getDevices(), (e) => e.status === 401);
  console.log(JSON.stringify({ ok: true }));
}

const [cmd, arg] = process.argv.slice(2);
await (cmd === "send" ? send() : check(arg));
