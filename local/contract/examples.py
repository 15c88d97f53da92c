"""The API document's examples, checked against the running API.

Sends every example request in openapi/patchbay.yaml to a running local stack (sandbox carrier and
voice AI), in an order that makes each one meaningful (a profile before its numbers, a number before
the messages sent from it), and checks each answer against the example the document shows for that
operation and status: the same status, and the same shape (the same keys at every depth, the same JSON
type wherever neither side is null, every array item shaped like the example's first item). Ids the
examples show are mapped to the live ids as answers arrive, so a later example request that names an
example id (an assistant to connect a number to) is sent with the live one.

It also holds the document to having examples: every operation is called, and every JSON request body
and every JSON 2xx answer has one. Webhook examples are signed the way each carrier signs (the local
stack's development keys), so they pass verification and are handled, not refused.

Usage: examples.py BASE_URL TOKEN [--doc openapi/patchbay.yaml] [--record OUT.json]
--record writes the live answers (ids replaced by stable example ids) instead of checking; it is how
the response examples were made, so that every one is an answer the API really gave.
Exits 1 and prints one line per mismatch.
"""

import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
import time
import urllib.parse
import uuid

import requests
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openapi_schema_validator import OAS31Validator

# The local stack's development webhook keys (local/src/server.rs), never production keys.
TELNYX_TEST_SECRET = "p68GNpDl9oAQohBiK0MEOFIjxnoFnz0uGGeJqxQ5PSb7sT30NeKJBe9x41ficebctubmao9Zp3lGEOva5+4KKQ=="
TWILIO_DEV_TOKEN = "patchbay-local-twilio-token"
VAPI_DEV_SECRET = "patchbay-local-vapi-secret"

# A uuid anywhere in a string: ids are uuids, and carrier-side ids embed them (`sbx-asst-<uuid>`).
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
METHODS = ("get", "post", "put", "patch", "delete")
# What the examples show for a webhook signing secret (the base64 of 32 bytes that say what they are).
EXAMPLE_SECRET = "whsec_" + base64.b64encode(b"patchbay-example-secret-not-real").decode()


def json_type(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(v)]


def shape(example, live, at="$", optional=()):
    """Where `live` is not shaped like `example`: one line per difference. Top-level keys in
    `optional` may be missing from the answer."""
    if example is None or live is None:
        return []
    if json_type(example) != json_type(live):
        return [f"{at}: the example is a {json_type(example)}, the answer a {json_type(live)}"]
    out = []
    if isinstance(example, dict):
        for k in sorted(example.keys() - live.keys() - set(optional)):
            out.append(f"{at}.{k}: in the example, not in the answer")
        for k in sorted(live.keys() - example.keys()):
            out.append(f"{at}.{k}: in the answer, not in the example")
        for k in sorted(example.keys() & live.keys()):
            out += shape(example[k], live[k], f"{at}.{k}")
    elif isinstance(example, list):
        if not example and live:
            out.append(f"{at}: the example shows no item, the answer has {len(live)}")
        for i, item in enumerate(live if example else []):
            out += shape(example[0], item, f"{at}[{i}]")
    return out


def example_uuid(name):
    """A UUIDv7-shaped id (as the API makes them) derived from `name`: a time in December 2026."""
    h = uuid.uuid5(uuid.NAMESPACE_URL, f"https://patchbay.dev/examples/{name}").hex
    ms = 1796547600000 + int(h[:6], 16) % 86_400_000
    x = f"{ms:012x}7{h[13:16]}{'89ab'[int(h[16], 16) % 4]}{h[17:32]}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


class Doc:
    def __init__(self, path):
        self.doc = yaml.safe_load(open(path))
        self.ops = {}
        for p, item in self.doc["paths"].items():
            for m in METHODS:
                if m in item:
                    self.ops[item[m]["operationId"]] = (m.upper(), p, item[m])

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def media_example(self, media):
        """The first example of a media type object, or None."""
        if "example" in media:
            return media["example"]
        for ex in (media.get("examples") or {}).values():
            return self.deref(ex)["value"]
        return None

    def request_example(self, op_id):
        _, _, op = self.ops[op_id]
        body = self.deref(op.get("requestBody", {}))
        for ct, media in body.get("content", {}).items():
            return ct, self.media_example(media)
        return None, None

    def response_example(self, op_id, status):
        _, _, op = self.ops[op_id]
        res = self.deref(op["responses"].get(str(status), {}))
        for ct, media in res.get("content", {}).items():
            if "json" in ct:
                return self.media_example(media), True
        return None, False

    def optional_keys(self, op_id, status):
        """The answer's top-level properties its schema does not require (a Problem's `field`)."""
        _, _, op = self.ops[op_id]
        for media in self.deref(op["responses"].get(str(status), {})).get("content", {}).values():
            schema = self.deref(media.get("schema", {}))
            return set(schema.get("properties", {})) - set(schema.get("required", schema.get("properties", {})))
        return set()

    def missing_examples(self):
        """JSON request bodies and 2xx JSON answers the document shows no example for."""
        out = []
        for op_id, (_, _, op) in self.ops.items():
            for ct, media in self.deref(op.get("requestBody", {})).get("content", {}).items():
                if self.media_example(media) is None:
                    out.append(f"{op_id}: the {ct} request body has no example")
            for status, res in op["responses"].items():
                if not status.startswith("2"):
                    continue
                for ct, media in self.deref(res).get("content", {}).items():
                    if "json" in ct and self.media_example(media) is None:
                        out.append(f"{op_id} {status}: the {ct} answer has no example")
        return out


class Run:
    def __init__(self, base, token, doc, record):
        self.base = base.rstrip("/")
        self.token = token
        self.doc = doc
        self.record = record
        self.http = requests.Session()
        self.problems = []
        self.called = set()
        # example id -> live id (checking); live id -> example id (recording).
        self.ids = {}
        self.recorded = {}

    # --- ids -------------------------------------------------------------------------------------

    def learn(self, example, live):
        """Pairs the ids an example shows with the ids the live answer carries, at the same places."""
        if isinstance(example, dict) and isinstance(live, dict):
            for k in example.keys() & live.keys():
                self.learn(example[k], live[k])
        elif isinstance(example, list) and isinstance(live, list):
            for e, l in zip(example, live):
                self.learn(e, l)
        elif isinstance(example, str) and isinstance(live, str):
            ex, lv = UUID.findall(example), UUID.findall(live)
            if len(ex) == len(lv) and UUID.sub("", example) == UUID.sub("", live):
                for e, l in zip(ex, lv):
                    self.ids.setdefault(e, l)

    def to_live(self, v):
        if isinstance(v, dict):
            return {k: self.to_live(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.to_live(x) for x in v]
        if isinstance(v, str):
            if self.record:
                live_of = {ex: live for live, ex in self.ids.items()}
                return UUID.sub(lambda m: live_of.get(m[0], m[0]), v)
            return UUID.sub(lambda m: self.ids.get(m[0], m[0]), v)
        return v

    def to_example(self, v, where="$"):
        """Recording: every live uuid becomes a stable example uuid, named after where it was first
        seen (operation and JSON path), so that a re-recording gives the same ids."""
        if isinstance(v, dict):
            return {k: self.to_example(x, f"{where}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [self.to_example(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, str):
            if v.startswith("whsec_"):
                # A signing secret is never recorded: the example shows a stand-in of its shape.
                return EXAMPLE_SECRET
            return UUID.sub(lambda m: self.example_id(m[0], where), v)
        return v

    def example_id(self, live, where):
        if live not in self.ids:
            taken = set(self.ids.values())
            n = 0
            while (candidate := example_uuid(f"{where}#{n}")) in taken:
                n += 1
            self.ids[live] = candidate
        return self.ids[live]

    # --- calls -----------------------------------------------------------------------------------

    def call(self, op_id, params=None, query=None, body="example", expect=200, headers=None, raw=None, auth=True):
        method, template, _ = self.doc.ops[op_id]
        self.called.add(op_id)
        path = template
        for k, v in (params or {}).items():
            path = path.replace("{" + k + "}", urllib.parse.quote(v, safe=""))
        ct, example_body = self.doc.request_example(op_id)
        if body == "example":
            body = self.to_live(example_body)
        h = {"Authorization": f"Bearer {self.token}"} if auth else {}
        h.update(headers or {})
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            h["Content-Type"] = "application/json"
            data = json.dumps(body)
        res = self.send(method, path, query, data, h)
        where = f"{op_id} ({method} {path})"
        if res.status_code != expect:
            self.problems.append(f"{where}: answered {res.status_code}, expected {expect}: {res.text[:300]}")
            return None
        live = res.json() if "json" in res.headers.get("content-type", "") else None
        example, is_json = self.doc.response_example(op_id, expect)
        if self.record:
            key = f"{op_id}-{expect}"
            # A read polled until something settles keeps its fullest answer (lists with items).
            if is_json and 200 <= expect < 300 and len(json.dumps(live)) >= len(json.dumps(self.recorded.get(key, ""))):
                self.recorded[key] = self.to_example(live, op_id)
        elif is_json:
            if example is None:
                self.problems.append(f"{where} {expect}: the document shows no example")
            else:
                optional = self.doc.optional_keys(op_id, expect)
                self.problems += [f"{where} {expect} {line}" for line in shape(example, live, optional=optional)]
                self.learn(example, live)
        return live

    def send(self, method, path, query, data, headers):
        # A 503 (contention, a carrier briefly away) is retried with the same request, as clients do.
        for _ in range(8):
            res = self.http.request(method, self.base + path, params=query, data=data, headers=headers, timeout=30)
            if res.status_code != 503:
                return res
            time.sleep(0.2)
        return res

    def until(self, op_id, params, done, query=None):
        """Reads (through the documented operation) until `done(answer)`; 30 s at most."""
        for _ in range(300):
            live = self.call(op_id, params, query=query)
            if live is None or done(live):
                return live
            time.sleep(0.1)
        self.problems.append(f"{op_id} {params}: did not settle within 30 s")
        return None

    def problem_example(self):
        """The shared Problem answer's example, against a real 422."""
        res = self.send(
            "POST",
            "/v1/messaging-profiles",
            None,
            json.dumps({"name": " "}),
            {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        live = res.json()
        media = self.doc.deref(self.doc.doc["components"]["responses"]["Problem"])["content"]["application/problem+json"]
        example = self.doc.media_example(media)
        if self.record:
            self.recorded["Problem"] = live
        elif example is None:
            self.problems.append("components.responses.Problem: no example")
        else:
            self.problems += [f"Problem (422 on POST /v1/messaging-profiles) {line}" for line in shape(example, live)]

    # --- webhooks, signed as each sender signs ---------------------------------------------------

    def telnyx(self):
        body = self.to_live(self.doc.request_example("telnyxWebhook")[1])
        raw = json.dumps(body).encode()
        ts = str(int(time.time()))
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(TELNYX_TEST_SECRET)[:32])
        sig = base64.b64encode(key.sign(ts.encode() + b"|" + raw)).decode()
        headers = {"Content-Type": "application/json", "telnyx-signature-ed25519": sig, "telnyx-timestamp": ts}
        self.call("telnyxWebhook", raw=raw, headers=headers, auth=False)

    def twilio(self, op_id, expect=200):
        form = self.to_live(self.doc.request_example(op_id)[1])
        _, path, _ = self.doc.ops[op_id]
        signed = self.base + path + "".join(k + str(form[k]) for k in sorted(form))
        sig = base64.b64encode(hmac.new(TWILIO_DEV_TOKEN.encode(), signed.encode(), hashlib.sha1).digest()).decode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}
        self.call(op_id, raw=urllib.parse.urlencode(form), headers=headers, auth=False, expect=expect)

    def vapi(self):
        body = self.to_live(self.doc.request_example("vapiWebhook")[1])
        # The example's times are fixed; the report is sent as of now, so that the dashboard's
        # default window (the last 30 days) counts it.
        end = time.time()
        msg = body["message"]
        msg["startedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(end - msg["durationSeconds"]))
        msg["endedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(end))
        headers = {"Content-Type": "application/json", "x-vapi-secret": VAPI_DEV_SECRET}
        self.call("vapiWebhook", raw=json.dumps(body), headers=headers, auth=False)

    # --- events --------------------------------------------------------------------------------

    def events_match_their_schemas(self):
        """Every event the scenario produced (the caller's whole log) validates against its type's
        schema in the document (`components.schemas.Event`, what `webhooks:` documents), and the
        scenario's changes produced the types they should."""
        if self.record:
            return
        schema = {"$ref": "#/components/schemas/Event", "components": self.doc.doc["components"]}
        validator = OAS31Validator(schema)
        events, after = [], None
        while True:
            query = {"limit": "100", **({"after": after} if after else {})}
            res = self.send("GET", "/v1/events", query, None, {"Authorization": f"Bearer {self.token}"})
            if res.status_code != 200:
                self.problems.append(f"GET /v1/events answered {res.status_code}: {res.text[:300]}")
                return
            page = res.json()
            events += page["data"]
            after = page["next_cursor"]
            if after is None:
                break
        for e in events:
            for err in validator.iter_errors(e):
                self.problems.append(f"event {e.get('type')} {e.get('id')}: {err.json_path}: {err.message}")
        want = {"phone_number.active", "message.queued", "message.sent", "message.delivered", "message.received", "call.ended", "assistant.active"}
        missing = want - {e["type"] for e in events}
        if missing:
            self.problems.append(f"the scenario's log has no {sorted(missing)} event")
        print(f"events: {len(events)} in the log, each valid against its schema", flush=True)

    # --- the scenario ----------------------------------------------------------------------------

    def scenario(self):
        self.call("healthz", auth=False)
        self.problem_example()

        # Messaging profiles.
        p = self.call("createMessagingProfile", expect=202)
        if p is None:
            return
        pid = {"id": p["id"]}
        self.until("showMessagingProfile", pid, lambda b: b["sync_state"] == "synced")
        self.call("listMessagingProfiles")
        self.call("updateMessagingProfile", pid, expect=202)
        self.until("showMessagingProfile", pid, lambda b: b["sync_state"] == "synced")

        # Numbers: searched, bought, put on the profile, which becomes the active one.
        query = {prm["name"]: prm["example"] for prm in self.doc.ops["searchAvailablePhoneNumbers"][2]["parameters"] if "example" in prm}
        self.call("searchAvailablePhoneNumbers", query=query)
        bought = self.call("buyPhoneNumber", expect=202)
        if bought is None:
            return
        n1 = {"e164": bought["phone_number"]}
        self.until("showPhoneNumber", n1, lambda b: b["status"] == "active")
        self.call("listPhoneNumbers")
        # The purchase, as its event in the log (one type: a page's items share one shape).
        self.call("listEvents", query={"type": "phone_number.active", "limit": "1"})
        self.call("assignPhoneNumber", {**pid, **n1}, expect=202)
        self.until("showMessagingProfile", pid, lambda b: b["assigned_numbers"] and b["assigned_numbers"][0]["profile_sync"] == "synced")
        self.call("activateMessagingProfile", pid)

        # SMS: a contact, a message to it (delivered by the sandbox), a reply through each carrier's webhook.
        contact = self.call("createContact", expect=201)
        self.call("listContacts")
        if contact is not None:
            # The contact read back, then renamed (the example request's new name).
            self.call("showContact", {"e164": contact["phone_number"]})
            self.call("updateContact", {"e164": contact["phone_number"]})
        sent = self.call("sendMessage", expect=202)
        self.telnyx()
        self.twilio("twilioInboundMessage")
        # A receipt for a message Patchbay has not recorded answers 503 (Twilio sends it again later);
        # the example's MessageSid is no message of this stack's.
        self.twilio("twilioStatusCallback", expect=503)
        convs = self.until("listConversations", None, lambda b: b["data"] and b["data"][0]["unread"] > 0)
        if sent and convs:
            cid = {"id": sent["conversation_id"]}
            self.until("listConversationMessages", cid, lambda b: any(m["status"] == "delivered" for m in b["data"]))
            self.call("markConversationRead", cid)

        # The dialer: a SIP connection with the number on it.
        c = self.call("createSipConnection", expect=202)
        if c is None:
            return
        conn = {"id": c["id"]}
        self.until("showSipConnection", conn, lambda b: b["sync_state"] == "synced")
        self.call("listSipConnections")
        self.call("updateSipConnection", conn, expect=202)
        self.until("showSipConnection", conn, lambda b: b["sync_state"] == "synced")
        self.call("assignNumberToConnection", {**conn, **n1}, expect=202)
        self.until("showSipConnection", conn, lambda b: b["phone_numbers"] and b["phone_numbers"][0]["sync_state"] == "synced")
        self.call("updateConnectionNumber", {**conn, **n1})
        self.call("createWebrtcToken", conn, expect=201)
        self.call("rotateSipPassword", conn, expect=202)
        self.until("showSipConnection", conn, lambda b: b["sync_state"] == "synced")
        self.call("unassignNumberFromConnection", {**conn, **n1}, expect=202)
        self.until("showSipConnection", conn, lambda b: not b["phone_numbers"])
        self.call("deleteSipConnection", conn, expect=202)

        # Voice AI: an assistant with a number bought for it, another number connected to it, a call.
        a = self.call("createAssistant", expect=202)
        if a is None:
            return
        aid = {"id": a["id"]}
        self.until("showAssistant", aid, lambda b: b["status"] == "active")
        self.call("listAssistants")
        self.call("updateAssistant", aid, expect=202)
        self.until("showAssistant", aid, lambda b: b["sync_state"] == "synced")
        self.call("connectPhoneNumberToAssistant", n1, expect=202)
        self.until("showPhoneNumber", n1, lambda b: b["assistant_sync"] == "synced")
        self.vapi()
        self.until("listCalls", None, lambda b: len(b["data"]) > 0)
        self.call("dashboard")

        # Webhook endpoints: one on a loopback URL (the local stack allows http to loopback; nothing
        # listens there, so its attempts fail and are listed), tested, changed, rotated, replayed.
        key = {"Idempotency-Key": "examples-webhook-endpoint"}
        w = self.call("createWebhookEndpoint", expect=201, headers=key)
        # The same key again: the endpoint as first registered, without its secret.
        self.call("createWebhookEndpoint", expect=200, headers=key)
        if w is not None:
            wid = {"id": w["id"]}
            self.call("listWebhookEndpoints")
            self.call("showWebhookEndpoint", wid)
            self.call("updateWebhookEndpoint", wid)
            self.call("rotateWebhookSecret", wid)
            self.call("testWebhookEndpoint", wid, expect=202)
            self.until("listWebhookDeliveries", wid, lambda b: len(b["data"]) > 0)
            self.call("replayWebhookEvents", wid, expect=202)
            self.call("deleteWebhookEndpoint", wid, expect=204)
        self.events_match_their_schemas()

        # Taken down again.
        self.call("deleteAssistant", aid, expect=202)
        self.call("unassignPhoneNumber", {**pid, **n1}, expect=202)
        self.until("showPhoneNumber", n1, lambda b: b["messaging_profile_id"] is None and b["assistant_id"] is None)
        self.call("releasePhoneNumber", n1, expect=202)
        self.call("deleteMessagingProfile", pid, expect=202)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("token")
    ap.add_argument("--doc", default="openapi/patchbay.yaml")
    ap.add_argument("--record")
    args = ap.parse_args()
    doc = Doc(args.doc)
    run = Run(args.base, args.token, doc, bool(args.record))
    run.scenario()
    if args.record:
        json.dump(run.recorded, open(args.record, "w"), indent=2)
        print(f"recorded {len(run.recorded)} answers to {args.record}")
    else:
        run.problems += doc.missing_examples()
        run.problems += [f"{op}: no example request of the scenario calls it" for op in sorted(doc.ops.keys() - run.called)]
    for p in run.problems:
        print(p)
    if run.problems:
        print(f"examples: {len(run.problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"examples: {len(run.called)} operations called, every answer shaped like its example")


if __name__ == "__main__":
    main()
