#!/usr/bin/env python3
"""Self-test of tests/webhooks/receiver.py: .venv/bin/python tests/webhooks/test_receiver.py

Starts the receiver as a subprocess, signs deliveries itself the way the Standard Webhooks spec says
(v1, + base64(HMAC-SHA256(base64decode(secret after "whsec_"), "{id}.{timestamp}.{body}"))) and checks
what the reference verifier in the receiver makes of them."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "receiver.py")


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def sign(secret, msg_id, ts, body: bytes):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Receiver:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        self.port = json.loads(line)["port"]
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=b"", headers=None):
        req = urllib.request.Request(self.base + path, data=body if method != "GET" else None,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def control(self, path, payload=None):
        if payload is None:
            status, answer = self.request("GET", path)
        else:
            status, answer = self.request("POST", path, json.dumps(payload).encode(),
                                          {"content-type": "application/json"})
        assert status == 200, (path, status, answer)
        return answer

    def deliver(self, msg_id, ts, body, signatures, path="/hooks/patchbay"):
        return self.request("POST", path, body, {
            "Content-Type": "application/json", "Webhook-Id": msg_id, "Webhook-Timestamp": str(ts),
            "Webhook-Signature": " ".join(signatures)})

    def last(self):
        return self.control("/_control/received")["received"][-1]


def main():
    r = Receiver()
    try:
        old, new = new_secret(), new_secret()
        body = json.dumps({"type": "message.delivered", "timestamp": "2026-12-02T18:00:00Z",
                           "data": {"id": "msg_1", "text": "héllo"}}, separators=(",", ":"),
                          ensure_ascii=False).encode()
        now = int(time.time())

        # Nothing configured: recorded, not verified.
        assert r.deliver("evt_0", now, body, [sign(new, "evt_0", now, body)]) == (200, {"ok": True})
        rec = r.last()
        assert rec["verified"] is False and rec["error"] == "no secrets configured", rec

        # One secret, a correctly signed delivery.
        assert r.control("/_control/secrets", {"secrets": [new]}) == {"ok": True}
        assert r.deliver("evt_1", now, body, [sign(new, "evt_1", now, body)]) == (200, {"ok": True})
        rec = r.last()
        assert rec["verified"] is True and rec["secret_index"] == 0 and rec["verified_by"] == [0], rec
        assert rec["error"] is None and rec["signatures"] == 1, rec
        assert rec["path"] == "/hooks/patchbay" and rec["webhook_id"] == "evt_1", rec
        assert rec["webhook_timestamp"] == str(now) and rec["content_type"] == "application/json", rec
        assert rec["body"] == body.decode() and isinstance(rec["at"], float), rec

        # Body changed after signing.
        tampered = body.replace(b"msg_1", b"msg_2")
        r.deliver("evt_2", now, tampered, [sign(new, "evt_2", now, body)])
        rec = r.last()
        assert rec["verified"] is False and rec["secret_index"] is None and rec["verified_by"] == [], rec
        assert rec["error"] == "No matching signature found", rec

        # Rotation: two signatures, both secrets configured -> both verify.
        r.control("/_control/secrets", {"secrets": [old, new]})
        r.deliver("evt_3", now, body, [sign(new, "evt_3", now, body), sign(old, "evt_3", now, body)])
        rec = r.last()
        assert rec["verified"] is True and rec["signatures"] == 2, rec
        assert rec["secret_index"] == 0 and rec["verified_by"] == [0, 1], rec
        # Only the new signature: the old secret does not verify it.
        r.deliver("evt_4", now, body, [sign(new, "evt_4", now, body)])
        rec = r.last()
        assert rec["secret_index"] == 1 and rec["verified_by"] == [1] and rec["error"] is None, rec

        # Timestamp 10 minutes old: the reference verifier refuses it.
        r.deliver("evt_5", now - 600, body, [sign(new, "evt_5", now - 600, body)])
        rec = r.last()
        assert rec["verified"] is False and rec["error"] == "Message timestamp too old", rec

        # Missing headers.
        r.request("POST", "/hooks/patchbay", body, {"content-type": "application/json"})
        rec = r.last()
        assert rec["verified"] is False and rec["error"] == "Missing required headers", rec
        assert rec["webhook_id"] is None and rec["signatures"] == 0, rec

        # /_control/verify
        headers = {"webhook-id": "evt_6", "webhook-timestamp": str(now),
                   "webhook-signature": sign(old, "evt_6", now, body)}
        ans = r.control("/_control/verify", {"headers": headers, "body": body.decode()})
        assert ans["verified"] is True and ans["secret_index"] == 0 and ans["error"] is None, ans
        ans = r.control("/_control/verify", {"headers": headers, "body": tampered.decode()})
        assert ans["verified"] is False and ans["secret_index"] is None, ans
        assert ans["error"] == "No matching signature found", ans

        # Status control.
        assert r.control("/_control/status", {"status": 500}) == {"ok": True}
        assert r.deliver("evt_7", now, body, [sign(new, "evt_7", now, body)]) == (500, {"ok": False})
        assert r.last()["verified"] is True
        r.control("/_control/status", {"status": 410})
        assert r.deliver("evt_8", now, body, [sign(new, "evt_8", now, body)]) == (410, {"ok": False})
        r.control("/_control/status", {"status": 200})
        assert r.deliver("evt_9", now, body, [sign(new, "evt_9", now, body)]) == (200, {"ok": True})
        ids = [x["webhook_id"] for x in r.control("/_control/received")["received"]]
        assert ids == [None if i == 6 else f"evt_{i}" for i in range(10)], ids

        # Bad control input and unknown control routes are refused, not recorded as deliveries.
        assert r.request("POST", "/_control/status", b'{"status": "x"}')[0] == 400
        assert r.request("POST", "/_control/nope", b"{}")[0] == 404

        # Reset.
        assert r.control("/_control/reset", {}) == {"ok": True}
        assert r.control("/_control/received") == {"received": []}

        # Closing stdin stops the receiver.
        r.proc.stdin.close()
        assert r.proc.wait(timeout=10) == 0, r.proc.returncode
        assert r.proc.stdout.read() == b"", "the receiver must print only its port line"
    finally:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()
    print("receiver self-test: ok")


if __name__ == "__main__":
    main()
