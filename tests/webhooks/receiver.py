#!/usr/bin/env python3
"""Loopback webhook receiver for the end-to-end tests: verifies every delivery with the reference
Standard Webhooks verifier (the `standardwebhooks` package from PyPI, pinned in local/constraints.txt).

    .venv/bin/python tests/webhooks/receiver.py [--port N]

Binds 127.0.0.1 only (port 0, the default, picks a free one) and prints one line, {"port": N}, to
stdout once listening; nothing else goes to stdout. It exits when its stdin reaches EOF, so a test
spawns it with a piped stdin and keeps the pipe open for as long as it needs the receiver: when the
test process dies the pipe closes and the receiver goes away with it. (A null stdin means an
immediate exit.)

Control routes (JSON in and out):
  POST /_control/secrets   {"secrets": ["whsec_...", ...]}  -> {"ok": true}  the secrets tried, in order
  POST /_control/status    {"status": 500}                   -> {"ok": true}  status of later deliveries
  GET  /_control/received                                    -> {"received": [record, ...]}
  POST /_control/reset                                       -> {"ok": true}  clears the records
  POST /_control/verify    {"headers": {...}, "body": "..."} -> {"verified", "secret_index", "error",
                                                                 "verified_by"}
Unknown /_control/ routes answer 404. Any other POST, on any path, is a delivery: it is verified with
every secret, recorded (see `record` in Handler._delivery) and answered with the current status and
{"ok": true}, or {"ok": false} when that status is not 2xx.

The reference verifier rejects timestamps more than 5 minutes old or new; that is intended.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = []
        self.status = 200
        self.received = []


STATE = State()


def _error_text(exc):
    if isinstance(exc, WebhookVerificationError):
        return str(exc)
    # Anything else the reference verifier raised on malformed input (an entry without a comma,
    # bad base64, a body that isn't UTF-8, a bad secret): keep the type, it is the useful part.
    return f"{type(exc).__name__}: {exc}"


def verify_with(secrets, body, headers):
    """Tries every secret, in order, on (body, headers) with the reference verifier.

    Returns (secret_index, verified_by, error): the index of the first secret that verified or None,
    the indices of all that did, and None when one did, else the last verifier error."""
    headers = {k: v for k, v in headers.items() if v is not None}
    verified_by = []
    error = None
    for index, secret in enumerate(secrets):
        try:
            # json_parse=False: check the signature only; a body that isn't JSON is the test's business.
            Webhook(secret).verify(body, headers, json_parse=False)
            verified_by.append(index)
        except Exception as exc:  # noqa: BLE001 - every failure of the verifier is a "not verified"
            error = _error_text(exc)
    if not secrets:
        error = "no secrets configured"
    if verified_by:
        error = None
    return (verified_by[0] if verified_by else None), verified_by, error


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "patchbay-webhook-receiver"

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass

    # -- plumbing -------------------------------------------------------------------------------

    def _read_body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers, up to the empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        else:
            body = b""
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json_body(self, raw):
        try:
            value = json.loads(raw.decode() or "{}")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"body is not JSON: {exc}")
        if not isinstance(value, dict):
            raise BadRequest("body must be a JSON object")
        return value

    # -- routes ---------------------------------------------------------------------------------

    def do_GET(self):
        if self.path.split("?")[0] == "/_control/received":
            with STATE.lock:
                received = [dict(r) for r in STATE.received]
            self._send(200, {"received": received})
        else:
            self._send(404, {"ok": False, "error": "not found"})

    def do_POST(self):
        try:
            raw = self._read_body()
        except (ValueError, OSError) as exc:
            self.close_connection = True
            self._send(400, {"ok": False, "error": f"unreadable body: {exc}"})
            return
        path = self.path.split("?")[0]
        if not path.startswith("/_control/"):
            self._delivery(raw)
            return
        try:
            if path == "/_control/secrets":
                self._set_secrets(self._json_body(raw))
            elif path == "/_control/status":
                self._set_status(self._json_body(raw))
            elif path == "/_control/reset":
                with STATE.lock:
                    STATE.received.clear()
                self._send(200, {"ok": True})
            elif path == "/_control/verify":
                self._verify(self._json_body(raw))
            else:
                self._send(404, {"ok": False, "error": f"unknown control route {path}"})
        except BadRequest as exc:
            self._send(400, {"ok": False, "error": str(exc)})

    def _set_secrets(self, req):
        secrets = req.get("secrets")
        if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
            raise BadRequest('expected {"secrets": ["whsec_...", ...]}')
        with STATE.lock:
            STATE.secrets = list(secrets)
        self._send(200, {"ok": True})

    def _set_status(self, req):
        status = req.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise BadRequest('expected {"status": <200..599>}')
        with STATE.lock:
            STATE.status = status
        self._send(200, {"ok": True})

    def _verify(self, req):
        headers, body = req.get("headers"), req.get("body")
        if not isinstance(headers, dict) or not isinstance(body, str):
            raise BadRequest('expected {"headers": {...}, "body": "<raw body>"}')
        headers = {str(k).lower(): (None if v is None else str(v)) for k, v in headers.items()}
        with STATE.lock:
            secrets = list(STATE.secrets)
        secret_index, verified_by, error = verify_with(
            secrets, body.encode(), {h: headers.get(h) for h in SIGNATURE_HEADERS})
        self._send(200, {"verified": secret_index is not None, "secret_index": secret_index,
                         "error": error, "verified_by": verified_by})

    def _delivery(self, raw):
        headers = {h: self.headers.get(h) for h in SIGNATURE_HEADERS}  # Message.get: case-insensitive
        with STATE.lock:
            secrets = list(STATE.secrets)
        secret_index, verified_by, error = verify_with(secrets, raw, headers)
        signature = headers["webhook-signature"]
        record = {
            "path": self.path,
            "webhook_id": headers["webhook-id"],
            "webhook_timestamp": headers["webhook-timestamp"],
            "webhook_signature": signature,
            "content_type": self.headers.get("content-type"),
            "body": raw.decode("utf-8", errors="replace"),
            "verified": secret_index is not None,
            "secret_index": secret_index,
            "error": error,
            "signatures": len(signature.split()) if signature else 0,
            "verified_by": verified_by,
            "at": time.time(),
        }
        with STATE.lock:
            STATE.received.append(record)
            status = STATE.status
        self._send(status, {"ok": 200 <= status < 300})


class BadRequest(Exception):
    pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hung up mid-request is not worth a traceback; anything else goes to stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _exit_on_stdin_eof(server):
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except (OSError, ValueError, AttributeError):  # AttributeError: no stdin at all (sys.stdin is None)
        pass
    server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    threading.Thread(target=_exit_on_stdin_eof, args=(server,), daemon=True).start()
    sys.stdout.write(json.dumps({"port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
