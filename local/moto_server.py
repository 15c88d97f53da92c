"""Serve moto (DynamoDB, SQS, Secrets Manager, CloudFormation, ...) on loopback, single-threaded.

moto's default threaded server does not apply conditional writes and TransactWriteItems atomically
under concurrent requests; one request at a time it does, so this is how Patchbay runs it. Because a
long poll would hold the only thread, every SQS client of this server uses short polls.

Usage: python local/moto_server.py [--host 127.0.0.1] [--port 0] [--exit-with-parent]
Prints one line `MOTO_READY <port>` on stdout once it accepts connections.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.parse
import warnings

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection can hold the one thread.
    protocol_version = "HTTP/1.0"

    def log_request(self, *args, **kwargs):  # noqa: D401 - werkzeug hook
        if os.environ.get("PATCHBAY_MOTO_LOG"):
            super().log_request(*args, **kwargs)


def cheap_transaction_rollback() -> None:
    """moto backs up every table a TransactWriteItems touches with a deep copy of the whole table, so
    each transaction costs time and memory in proportion to the table (measured: 600 transactions on
    a growing table took 22 s and left the server at 1.1 GB). Back up only the items the transaction
    touches instead, and restore those if it is cancelled. Atomicity is unchanged: the server runs
    one request at a time, and a cancelled transaction leaves every touched item as it was, and no
    record in the table's stream."""
    import copy

    import moto.dynamodb.models as models

    class _NoTableCopy:
        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, models.Table):
                return value
            return copy.deepcopy(value, memo)

    models.copy = _NoTableCopy()
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        backups = []
        # Stream records: a cancelled transaction must leave none (DynamoDB writes none), but the
        # applied items and their restores below would each add one. Remember where each touched
        # table's stream ended, and cut it back there on cancel.
        marks = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            name = op.get("TableName")
            if not name or name not in self.tables:
                continue
            table = self.tables[name]
            shard = getattr(table, "stream_shard", None)
            if shard is not None and all(t is not table for t, _ in marks):
                marks.append((table, len(shard.items)))
            if "Item" in op:
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op.get("Key")
            if not key:
                continue
            try:
                current = self.get_item(name, key)
            except Exception:  # noqa: BLE001 - a bad key fails the transaction itself
                continue
            backups.append((name, key, current.to_json()["Attributes"] if current else None))
        try:
            return original(self, transact_items)
        except Exception:
            for name, key, attributes in reversed(backups):
                if attributes is None:
                    if self.get_item(name, key) is not None:
                        self.delete_item(name, key)
                else:
                    self.put_item(name, copy.deepcopy(attributes))
            for table, length in marks:
                del table.stream_shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


class RequestCounter:
    """Counts every AWS request the emulator serves, by operation (`DynamoDB_20120810.GetItem`,
    `AmazonSQS.SendMessage`, `secretsmanager.GetSecretValue`, or the Query API's `Action`).
    `GET /_patchbay/requests` answers the counts; `DELETE` answers them and starts again from zero.
    `scripts/bench calls` reads them around each operation."""

    PATH = "/_patchbay/requests"

    def __init__(self, app):
        self.app = app
        self.counts = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == self.PATH:
            body = json.dumps(self.counts, sort_keys=True).encode()
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.counts = {}
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET")
        if not target:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            target = (query.get("Action") or ["other"])[0]
        self.counts[target] = self.counts.get(target, 0) + 1
        return self.app(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-with-parent", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    # moto warns for every template resource type its CloudFormation skips (API Gateway, Cognito,
    # alarms): expected here, since the local stack serves the API itself.
    warnings.filterwarnings("ignore", module="moto")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    cheap_transaction_rollback()
    app = RequestCounter(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=False, request_handler=QuietHandler)
    os.environ["MOTO_PORT"] = str(server.port)

    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    print(f"MOTO_READY {server.port}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
