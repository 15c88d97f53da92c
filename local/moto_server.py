"""Serve moto (DynamoDB, SQS, Secrets Manager, CloudFormation, ...) on loopback, single-threaded.

moto's default threaded server does not apply conditional writes and TransactWriteItems atomically
under concurrent requests; one request at a time it does, so this is how Patchbay runs it. Because a
long poll would hold the only thread, every SQS client of this server uses short polls.

Usage: python local/moto_server.py [--host 127.0.0.1] [--port 0] [--exit-with-parent]
Prints one line `MOTO_READY <port>` on stdout once it accepts connections.
"""

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection can hold the one thread.
    protocol_version = "HTTP/1.0"

    def log_request(self, *args, **kwargs):  # noqa: D401 - werkzeug hook
        if os.environ.get("PATCHBAY_MOTO_LOG"):
            super().log_request(*args, **kwargs)


def watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.5)


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
    app = DomainDispatcherApplication(create_backend_app)
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
