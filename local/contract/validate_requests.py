"""Validates recorded HTTP requests against a provider's official OpenAPI document.

Prism (the contract mock used for Twilio and Telnyx) does not finish loading Vapi's document on this
machine (it resolves the whole document's references up front), so Vapi requests are recorded by a
fake and checked here instead, against the same official document: the path matches one of the
document's path templates, the method is declared there, every required query parameter is present
and no undeclared one is sent, and a JSON body validates against the operation's request schema
(`$ref`s resolved lazily inside the document, OpenAPI 3.0 keywords honoured).

Usage: validate_requests.py SPEC REQUESTS_JSON
REQUESTS_JSON: [{"method": "POST", "path": "/assistant", "query": {"limit": "1000"}, "body": {...} | null}]
Prints one line per violation and exits 1 if there is any.
"""

import json
import re
import sys

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_URI = "urn:provider-spec"


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def main(spec_path, requests_path):
    spec = json.load(open(spec_path))
    requests = json.load(open(requests_path))
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4))
    templates = [(template_regex(t), t) for t in spec["paths"]]
    # Literal templates first (`/assistant/x` must not take `/assistant/{id}` when a literal exists).
    templates.sort(key=lambda t: t[1].count("{"))
    violations = []
    for r in requests:
        where = f'{r["method"]} {r["path"]}'
        matched = next((t for rx, t in templates if rx.match(r["path"])), None)
        if matched is None:
            violations.append(f"{where}: no such path in the document")
            continue
        op = spec["paths"][matched].get(r["method"].lower())
        if op is None:
            violations.append(f"{where}: {r['method']} is not declared for {matched}")
            continue
        params = [p for p in op.get("parameters", []) + spec["paths"][matched].get("parameters", []) if "$ref" not in p]
        declared = {p["name"] for p in params if p.get("in") == "query"}
        for name in r.get("query", {}):
            if name not in declared:
                violations.append(f"{where}: query parameter {name!r} is not declared")
        for p in params:
            if p.get("in") == "query" and p.get("required") and p["name"] not in r.get("query", {}):
                violations.append(f"{where}: required query parameter {p['name']!r} is missing")
        body = r.get("body")
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None and schema is None:
            violations.append(f"{where}: a JSON body is sent to an operation that takes none")
        elif schema is not None:
            if body is None and op["requestBody"].get("required"):
                violations.append(f"{where}: the required body is missing")
                continue
            resolver_schema = {"$ref": f"{SPEC_URI}#/paths/{json_pointer(matched)}/{r['method'].lower()}/requestBody/content/application~1json/schema"}
            validator = OAS30Validator(resolver_schema, registry=registry)
            for e in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                violations.append(f"{where}: body {'/'.join(map(str, e.path)) or '(root)'}: {e.message[:300]}")
    for v in violations:
        print(v)
    print(f"{len(requests)} requests checked, {len(violations)} violations")
    return 1 if violations else 0


def json_pointer(s):
    return s.replace("~", "~0").replace("/", "~1")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
