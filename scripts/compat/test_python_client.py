"""The published Python client `android-sms-gateway` (4.3.3), unchanged, against a real relay.

Every method the contract lists for it runs once on each of its four HTTP backends (sync on
httpx and on requests, async on aiohttp and on httpx): send plain, encrypted (its
`encryption` extra) and data messages through the simulated phones to `Delivered`, state,
list with filters, cancel, webhooks with the signature checked, devices, settings, health,
inbox, logs, tokens (issue, use, scope refusal, refresh, revoke), and errors mapped to the
client's error classes.
"""

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.request

import pytest
import requests

import android_sms_gateway as sg
from android_sms_gateway import ahttp, errors, http
from android_sms_gateway.encryption import Encryptor
from android_sms_gateway.enums import (
    HealthStatus, LimitPeriod, ProcessState, WebhookDelivery, WebhookEvent,
)
from android_sms_gateway.webhooks import SmsDataReceivedPayload, SmsReceivedPayload

from conftest import ECHO_NUMBER, PASSPHRASE

BACKENDS = ["httpx", "requests", "aiohttp", "httpx-async"]
UTC = dt.timezone.utc


def now():
    return dt.datetime.now(UTC)


class Runner:
    """Runs the client's methods the same way for the sync and the async clients."""

    def __init__(self, backend, relay, login=None, password=None, encryptor=None):
        self.backend = backend
        login = relay.login if login is None and password is None else login
        password = relay.password if password is None else password
        self.loop = None
        if backend in ("httpx", "requests"):
            transport = http.HttpxHttpClient() if backend == "httpx" else http.RequestsHttpClient()
            self.client = sg.APIClient(
                login, password, base_url=relay.base, encryptor=encryptor, http=transport
            )
            transport.__enter__()
            self.transport = transport
        else:
            transport = (
                ahttp.AiohttpAsyncHttpClient() if backend == "aiohttp"
                else ahttp.HttpxAsyncHttpClient()
            )
            self.client = sg.AsyncAPIClient(
                login, password, base_url=relay.base, encryptor=encryptor, http_client=transport
            )
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(transport.__aenter__())
            self.transport = transport

    def __call__(self, name, *args, **kwargs):
        out = getattr(self.client, name)(*args, **kwargs)
        return self.loop.run_until_complete(out) if self.loop else out

    def close(self):
        if self.loop:
            self.loop.run_until_complete(self.transport.__aexit__(None, None, None))
            self.loop.close()
        else:
            self.transport.__exit__(None, None, None)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def run(backend, relay):
    r = Runner(backend, relay)
    yield r
    r.close()


def raw_get(relay, path):
    req = urllib.request.Request(relay.base + path, headers={
        "authorization": "Basic " + base64.b64encode(
            f"{relay.login}:{relay.password}".encode()).decode()})
    with urllib.request.urlopen(req) as r:
        assert r.headers["content-type"].startswith("application/json")
        return json.loads(r.read())


def signing_key(run):
    return run("get_settings").webhooks.signing_key


def check_signature(headers, body, key):
    ts = headers["x-timestamp"]
    want = hmac.new(key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
    assert headers["x-signature"] == want


def register(run, receiver, backend, event):
    hook = sg.Webhook(id=f"{backend}-{event.value.replace(':', '-')}", url=receiver.url, event=event)
    got = run("create_webhook", hook)
    assert (got.id, got.url, got.event) == (hook.id, receiver.url, event)
    return got


def test_health_needs_no_auth_and_passes(run, relay):
    for probe in ("health_check", "liveness_check", "readiness_check", "startup_check"):
        h = run(probe)
        assert h.status == HealthStatus.PASS, probe
    with urllib.request.urlopen(relay.url + "/health") as r:
        assert json.loads(r.read())["status"] == "pass"


def test_plain_send_reaches_delivered_with_signed_webhooks(run, relay, receiver, backend):
    for ev in (WebhookEvent.SMS_SENT, WebhookEvent.SMS_DELIVERED):
        register(run, receiver, backend, ev)
    hooks = run("get_webhooks")
    ids = {h.id for h in hooks}
    assert f"{backend}-sms-sent" in ids and f"{backend}-sms-delivered" in ids
    # Registering the same id again replaces it (no duplicate).
    register(run, receiver, backend, WebhookEvent.SMS_SENT)
    assert [h.id for h in run("get_webhooks")].count(f"{backend}-sms-sent") == 1

    key = signing_key(run)
    t0 = now()
    numbers = ["+15550100001", "+15550100002"]
    msg = sg.Message(
        id=f"{backend}-plain", phone_numbers=numbers,
        text_message=sg.TextMessage(text="hello from " + backend),
    )
    state = run("send", msg)
    assert state.id == msg.id
    assert state.state in (ProcessState.Pending, ProcessState.Processed)
    assert [r.phone_number for r in state.recipients] == numbers
    for n in numbers:
        h, body, j = receiver.wait_for(lambda j, n=n: j["event"] == "sms:delivered"
                                       and j["payload"]["messageId"] == msg.id
                                       and j["payload"]["recipient"] == n)
        check_signature(h, body, key)
        assert j["webhookId"] == f"{backend}-sms-delivered" and j["deviceId"]
    _, body, sent = receiver.wait_for(lambda j: j["event"] == "sms:sent"
                                      and j["payload"]["messageId"] == msg.id)
    assert sent["payload"]["partsCount"] == 1
    got = run("get_state", msg.id)
    assert got.state == ProcessState.Delivered
    assert {r.state for r in got.recipients} == {ProcessState.Delivered}
    assert got.device_id

    # A retried send with the same id is the same message, not a second one.
    again = run("send", msg)
    assert again.id == msg.id

    # The list, with its filters.
    listed = run("get_messages", query=sg.MessagesQueryFilter(
        from_=t0 - dt.timedelta(seconds=1), to=now() + dt.timedelta(seconds=1),
        state="Delivered", device_id=got.device_id,
    ))
    assert msg.id in [m.id for m in listed]
    one = run("get_messages", query=sg.MessagesQueryFilter(from_=t0 - dt.timedelta(seconds=1)),
              pagination=sg.QueryPagination(limit=1, offset=0), sort="created_at")
    assert len(one) == 1
    none = run("get_messages", query=sg.MessagesQueryFilter(
        from_=t0 - dt.timedelta(seconds=1), state="Cancelled"))
    assert msg.id not in [m.id for m in none]

    # Logs: the message's history.
    logs = run("get_logs", from_=(t0 - dt.timedelta(seconds=1)).isoformat(),
               to=(now() + dt.timedelta(seconds=1)).isoformat())
    assert any(msg.id in e.message for e in logs)

    for ev in ("sms-sent", "sms-delivered"):
        run("delete_webhook", f"{backend}-{ev}")
    assert not [h for h in run("get_webhooks") if h.id.startswith(backend + "-")]


def test_cancel_a_pending_message_and_409_after(run, relay, backend):
    # Python's Message has no scheduleAt; upstream's API does: sent raw, cancelled by the client.
    mid = f"{backend}-cancel"
    at = (now() + dt.timedelta(hours=1)).isoformat()
    req = urllib.request.Request(
        relay.base + "/messages", method="POST",
        data=json.dumps({"id": mid, "phoneNumbers": ["+15550100003"],
                         "textMessage": {"text": "later"}, "scheduleAt": at}).encode(),
        headers={"content-type": "application/json",
                 "authorization": "Basic " + base64.b64encode(
                     f"{relay.login}:{relay.password}".encode()).decode()},
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 202
        assert r.headers["Location"] == f"/3rdparty/v1/messages/{mid}"
    run("cancel_message", mid)
    assert run("get_state", mid).state in (ProcessState.Cancelled, ProcessState.Cancelling)
    with pytest.raises((errors.APIError, requests.HTTPError)) as e:
        run("cancel_message", mid)
    status = getattr(e.value, "status_code", None) or e.value.response.status_code
    assert status == 409


def test_encrypted_send_and_encrypted_incoming(backend, relay, receiver):
    enc = Encryptor(PASSPHRASE, iterations=75_000)
    run = Runner(backend, relay, encryptor=enc)
    try:
        register(run, receiver, backend, WebhookEvent.SMS_RECEIVED)
        key = signing_key(run)
        text = f"secret {backend} ✓"
        msg = sg.Message(id=f"{backend}-enc", phone_numbers=[ECHO_NUMBER],
                         text_message=sg.TextMessage(text=text))
        state = run("send", msg)
        # The client decrypts the numbers the relay returns exactly as it received them.
        assert [r.phone_number for r in state.recipients] == [ECHO_NUMBER]
        # (The client clears `is_encrypted` once it decrypted; the wire says it.)
        raw = raw_get(relay, f"/messages/{msg.id}")
        assert raw["isEncrypted"] is True
        assert raw["recipients"][0]["phoneNumber"].startswith("$aes-256-cbc/pbkdf2-sha1$")
        # The echo number answers with the text it received: the phone decrypted it for the
        # radio, and encrypts what it receives.
        h, body, j = receiver.wait_for(
            lambda j: j["event"] == "sms:received" and j["webhookId"] == f"{backend}-sms-received"
            and j["payload"]["message"].startswith("$aes-256-cbc/pbkdf2-sha1$")
            and enc.decrypt(j["payload"]["message"]) == "echo: " + text)
        check_signature(h, body, key)
        p = SmsReceivedPayload.from_dict(j["payload"])
        assert enc.decrypt(p.sender) == ECHO_NUMBER
        got = run("get_state", msg.id)
        assert got.state == ProcessState.Delivered
        assert [r.phone_number for r in got.recipients] == [ECHO_NUMBER]
        run("delete_webhook", f"{backend}-sms-received")
    finally:
        run.close()
    # Without an encryptor the client refuses an encrypted state, as it does upstream.
    plain = Runner(backend, relay)
    try:
        with pytest.raises(ValueError):
            plain("get_state", f"{backend}-enc")
    finally:
        plain.close()


def test_data_message_and_data_received(run, relay, receiver, backend):
    enc = Encryptor(PASSPHRASE, iterations=75_000)
    register(run, receiver, backend, WebhookEvent.SMS_DATA_RECEIVED)
    payload = b"\x00\x01binary " + backend.encode()
    msg = sg.Message(id=f"{backend}-data", phone_numbers=[ECHO_NUMBER],
                     data_message=sg.DataMessage.with_bytes(payload, 53739))
    run("send", msg)
    _, _, j = receiver.wait_for(
        lambda j: j["event"] == "sms:data-received"
        and j["webhookId"] == f"{backend}-sms-data-received"
        and base64.b64decode(enc.decrypt(j["payload"]["data"])) == payload)
    SmsDataReceivedPayload.from_dict(j["payload"])
    assert run("get_state", msg.id).state == ProcessState.Delivered
    run("delete_webhook", f"{backend}-sms-data-received")


def test_inbox_list_refresh_and_export(run, relay, receiver, backend):
    register(run, receiver, backend, WebhookEvent.SMS_RECEIVED)
    t0 = now()
    run("send", sg.Message(id=f"{backend}-inbox", phone_numbers=[ECHO_NUMBER],
                           text_message=sg.TextMessage(text="inbox " + backend)))
    enc = Encryptor(PASSPHRASE, iterations=75_000)
    _, _, first = receiver.wait_for(
        lambda j: j["event"] == "sms:received" and j["webhookId"] == f"{backend}-sms-received"
        and enc.decrypt(j["payload"]["message"]) == "echo: inbox " + backend)
    sms_id = first["payload"]["messageId"]
    items = run("list_inbox_messages", inbox_filter=sg.InboxQueryFilter(
        message_type="SMS", from_=t0 - dt.timedelta(seconds=1)))
    assert sms_id in [i.id for i in items]
    assert run("list_inbox_messages", inbox_filter=sg.InboxQueryFilter(
        message_type="MMS", from_=t0)) == []
    # Refresh delivers what the inbox holds again (a second delivery of the same SMS).
    until = now() + dt.timedelta(seconds=1)
    assert run("refresh_inbox", sg.InboxRefreshRequest(
        since=t0 - dt.timedelta(seconds=1), until=until,
        webhook_delivery=WebhookDelivery.INDIVIDUAL)) == {}
    receiver.wait_for(lambda j: j["event"] == "sms:received"
                      and j["payload"]["messageId"] == sms_id and j["id"] != first["id"]
                      and j["webhookId"] == f"{backend}-sms-received")
    device = run("list_devices")[0].id
    assert run("export_inbox", sg.MessagesExportRequest(
        device_id=device, since=t0 - dt.timedelta(seconds=1), until=until)) == {}
    run("delete_webhook", f"{backend}-sms-received")


def test_devices_settings_round_trip(run, backend):
    devices = run("list_devices")
    assert len(devices) >= 2 and all(d.id and d.name for d in devices)
    key = signing_key(run)
    put = run("update_settings", sg.DeviceSettings(
        messages=sg.SettingsMessages(limit_period=LimitPeriod.PER_HOUR, limit_value=100)))
    assert put["messages"] == {"limit_period": "PerHour", "limit_value": 100}
    patched = run("patch_settings", sg.DeviceSettings(ping=sg.SettingsPing(interval_seconds=60)))
    assert patched["ping"] == {"interval_seconds": 60}
    s = run("get_settings")
    assert s.messages.limit_period == LimitPeriod.PER_HOUR and s.messages.limit_value == 100
    assert s.ping.interval_seconds == 60
    assert s.webhooks.signing_key == key, "PUT without a signing key keeps the account's"
    with pytest.raises(errors.BadRequestError):
        run("patch_settings", sg.DeviceSettings(
            encryption=sg.SettingsEncryption(passphrase="never on the relay")))


def test_tokens_scopes_refresh_and_revoke(run, relay, backend):
    tok = run("generate_token", sg.TokenRequest(scopes=["messages:send", "messages:read"], ttl=600))
    assert tok.access_token and tok.id and tok.refresh_token
    bearer = Runner(backend, relay, login="", password=tok.access_token)
    try:
        st = bearer("send", sg.Message(id=f"{backend}-jwt", phone_numbers=["+15550100004"],
                                       text_message=sg.TextMessage(text="with a token")))
        assert bearer("get_state", st.id).id == st.id
        with pytest.raises(errors.ForbiddenError):
            bearer("list_devices")
        if backend in ("httpx", "requests"):
            fresh = bearer("refresh_token", tok.refresh_token)
            assert fresh.access_token != tok.access_token
            # A refresh token works once.
            with pytest.raises(errors.UnauthorizedError):
                bearer("refresh_token", tok.refresh_token)
        run("revoke_token", tok.id)
        with pytest.raises(errors.UnauthorizedError):
            bearer("get_state", st.id)
    finally:
        bearer.close()


def test_errors_map_to_the_client_classes(run, relay, backend):
    with pytest.raises(errors.NotFoundError):
        run("get_state", "no-such-message")
    with pytest.raises(errors.BadRequestError):
        run("send", sg.Message(phone_numbers=["12"], text_message=sg.TextMessage(text="x")))
    wrong = Runner(backend, relay, login=relay.login, password="not-the-password")
    try:
        with pytest.raises(errors.UnauthorizedError):
            wrong("list_devices")
    finally:
        wrong.close()
    bad_hook = sg.Webhook(id=None, url="ftp://example.com/x", event=WebhookEvent.SMS_SENT)
    with pytest.raises(errors.BadRequestError):
        run("create_webhook", bad_hook)


def test_system_ping_at_the_accounts_interval(relay, receiver):
    run = Runner("httpx", relay)
    try:
        register(run, receiver, "ping", WebhookEvent.SYSTEM_PING)
        run("patch_settings", sg.DeviceSettings(ping=sg.SettingsPing(interval_seconds=10)))
        key = signing_key(run)
        devices = {d.id for d in run("list_devices")}
        h, body, j = receiver.wait_for(lambda j: j["event"] == "system:ping"
                                       and j["webhookId"] == "ping-system-ping")
        check_signature(h, body, key)
        assert j["deviceId"] in devices
        assert j["payload"]["health"]["status"] == "pass"
        run("delete_webhook", "ping-system-ping")
        run("patch_settings", sg.DeviceSettings(ping=sg.SettingsPing(interval_seconds=0)))
    finally:
        run.close()


def test_zz_remove_device(relay):
    run = Runner("httpx", relay)
    try:
        devices = run("list_devices")
        run("remove_device", devices[-1].id)
        assert devices[-1].id not in [d.id for d in run("list_devices")]
        with pytest.raises(errors.NotFoundError):
            run("remove_device", devices[-1].id)
    finally:
        run.close()


def test_js_client(relay, receiver):
    """The JS client's methods (its own script, `js_client.mjs`), webhooks awaited here."""
    import os
    import shutil
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, SIMRELAY_COMPAT_URL=relay.base, SIMRELAY_LOGIN=relay.login,
               SIMRELAY_PASSWORD=relay.password, SIMRELAY_RECEIVER=receiver.url)
    node = os.environ["SIMRELAY_JS_DIR"]

    # Bare imports resolve from the script's own folder: it runs from the client's install.
    shutil.copy(os.path.join(here, "js_client.mjs"), node)

    def js(*args):
        out = subprocess.run(["node", "js_client.mjs", *args], cwd=node,
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    mid = js("send")["id"]
    for n in ("+15550200001", "+15550200002"):
        receiver.wait_for(lambda j, n=n: j["event"] == "sms:delivered"
                          and j["webhookId"] == "js-delivered"
                          and j["payload"]["messageId"] == mid
                          and j["payload"]["recipient"] == n)
    assert js("check", mid) == {"ok": True}
