"""A small ticket shop to race with sim: an HTTP server on Python's standard library alone
(http.server and sqlite3) that sells from one stock row, in one of four modes (see
shop_core.py): racy, locked, atomic, retry-unsafe.

    python3 examples/shop/shop.py --port 8080 --db /tmp/shop.db --mode racy --hold-ms 20

    GET  /health                  200 once it serves
    PUT  /stock   {"stock": 100}  sets the stock and forgets every idempotency key
    GET  /stock                   {"stock": 43}
    POST /buy     {"buyer": 3}    201 {"ticket": 57}, or 409 {"error": "sold out"}

A purchase that carries an Idempotency-Key header already answered gets the same ticket
again (but in retry-unsafe mode). With --fail-every N, every N-th sale is committed and
then answered 503, as a shop whose reply is lost after its commit.
"""

import argparse
import json
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shop_core import MODES, Shop, SoldOut


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per buyer
    # Headers and body go out in two writes: without this, the second waits for the
    # buyer's delayed acknowledgement of the first, 40 ms a reply.
    disable_nagle_algorithm = True
    local = threading.local()
    sales = 0
    sales_lock = threading.Lock()

    def shop(self):
        if not hasattr(Handler.local, "shop"):
            Handler.local.shop = Shop(self.server.args.db, self.server.args.mode, self.server.args.hold_ms)
        return Handler.local.shop

    def log_message(self, format, *args):
        pass  # one line a request would drown service.log

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def authorised(self):
        token = self.server.args.token
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self.reply(401, {"error": "no valid Authorization header"})
            return False
        return True

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"ok": True})
        elif self.path == "/stock":
            self.reply(200, {"stock": self.shop().stock()})
        else:
            self.reply(404, {"error": f"no such path: {self.path}"})

    def do_PUT(self):
        if self.path != "/stock":
            return self.reply(404, {"error": f"no such path: {self.path}"})
        try:
            stock = int(self.body()["stock"])
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, {"error": f"expected {{\"stock\": N}}: {e}"})
        self.shop().reset(stock)
        self.reply(200, {"stock": stock})

    def do_POST(self):
        if self.path != "/buy":
            return self.reply(404, {"error": f"no such path: {self.path}"})
        if not self.authorised():
            return
        try:
            self.body()
        except ValueError as e:
            return self.reply(400, {"error": f"the body is not JSON: {e}"})
        try:
            ticket = self.shop().buy(self.headers.get("Idempotency-Key"))
        except SoldOut:
            return self.reply(409, {"error": "sold out"})
        every = self.server.args.fail_every
        if every:
            with Handler.sales_lock:
                Handler.sales += 1
                fail = Handler.sales % every == 0
            if fail:  # committed, and the buyer is told it failed
                return self.reply(503, {"error": "try again"})
        if self.server.args.reply == "text":  # as a shop whose API is not what sim was told
            data = f"sold ticket {ticket}\n".encode()
            self.send_response(201)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        self.reply(201, {"ticket": f"seat-{ticket}" if self.server.args.ids else ticket})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True, help="the SQLite database file (made if missing)")
    parser.add_argument("--mode", choices=MODES, default="racy")
    parser.add_argument("--hold-ms", type=float, default=0.0, help="the race window, between the read and the write")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every N-th sale 503, after its commit")
    parser.add_argument("--ids", action="store_true", help='answer tickets as ids: {"ticket": "seat-57"}')
    parser.add_argument("--reply", choices=("json", "text"), default="json", help="text: answer a sale in plain text")
    parser.add_argument("--token", default="", help="require Authorization: Bearer TOKEN on /buy")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve https with this PEM certificate and key")
    args = parser.parse_args()
    Shop.create(args.db)
    # The standard library's backlog of 5 drops the connections of more buyers that come at
    # once, and each dropped one waits a second to try again.
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.args = args
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    # SIGTERM ends the server as Ctrl-C would.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"shop: {args.mode} on 127.0.0.1:{args.port}, database {args.db}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
