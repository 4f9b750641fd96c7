"""The example shop's command-mode buyer: sim starts one per buyer process and speaks
JSON lines with it on stdin and stdout (docs/reference/service.md). It sells from the
same SQLite database as shop.py, in the same modes (shop_core.py); its "locked" mode takes
SQLite's write lock, as buyers are processes here, not threads.

    python3 examples/shop/buyer.py --db /tmp/shop.db --mode atomic

    {"id": 1, "op": "reset", "stock": 100}                     -> {"id": 1, "ok": true}
    {"id": 2, "op": "buy", "buyer": 3, "attempt": 0, "key": "k"} -> {"id": 2, "ticket": 100}
    {"id": 3, "op": "stock"}                                    -> {"id": 3, "stock": 99}
"""

import argparse
import json
import sys

from shop_core import MODES, Shop, SoldOut


def answer(shop, request, args, sales):
    op = request.get("op")
    if op == "reset":
        shop.reset(int(request["stock"]))
        return {"ok": True}
    if op == "stock":
        return {"stock": shop.stock()}
    if op == "buy":
        try:
            ticket = shop.buy(request.get("key"))
        except SoldOut:
            return {"sold_out": True}
        sales[0] += 1
        if args.fail_every and sales[0] % args.fail_every == 0:
            return {"unknown": "committed, and the answer lost"}
        return {"ticket": ticket}
    return {"error": f"unknown op {op!r}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the SQLite database file (made if missing)")
    parser.add_argument("--mode", choices=MODES, default="racy")
    parser.add_argument("--hold-ms", type=float, default=0.0, help="the race window, between the read and the write")
    parser.add_argument("--fail-every", type=int, default=0, help="answer every N-th sale unknown, after its commit")
    args = parser.parse_args()
    Shop.create(args.db)
    shop = Shop(args.db, args.mode, args.hold_ms, cross_process_lock=True)
    sales = [0]
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = answer(shop, request, args, sales)
        reply["id"] = request.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
