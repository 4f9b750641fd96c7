"""Buyers racing for tickets with multiprocessing, as in the lesson, recording every
purchase as operations in JSON lines, so that sim's checker can judge the race:

    python3 examples/buyers.py --buyers 30 --tickets 10 --out buyers.jsonl
    sim check --history buyers.jsonl --initial 10 --final "$(cat data.txt)" --out buyers-report

Each buyer reads the stock from data.txt, holds a moment, and writes one less if there
was a ticket: without --lock two buyers can read the same number, and the checker will
say which tickets were sold twice. Each line is an operation as docs/reference/history.md
describes them: an invocation, then its completion by the same process, times in
nanoseconds from the start of the sale.
"""

import argparse
import json
import os
import time
from multiprocessing import Lock, Process


def record(fd, event):
    # One write per line on a file opened with O_APPEND: lines of different buyers never mix.
    os.write(fd, (json.dumps(event) + "\n").encode())


def buyer(n, args, lock, origin):
    def now():
        return time.monotonic_ns() - origin

    fd = os.open(args.out, os.O_WRONLY | os.O_APPEND)
    for _ in range(args.attempts):
        record(fd, {"process": n, "type": "invoke", "f": "purchase", "time": now()})
        done = {"process": n, "f": "purchase"}
        if lock:
            lock.acquire()
        try:
            with open(args.stock) as f:
                text = f.read()
            done["read_time"] = now()
            try:
                value = int(text)
            except ValueError:
                done.update({"type": "fail", "value": None, "error": "unreadable"})
            else:
                done["value"] = value
                if value > 0:
                    time.sleep(args.hold)
                    with open(args.stock, "w") as f:
                        f.write(str(value - 1))
                    done.update({"type": "ok", "written": value - 1, "write_time": now()})
                else:
                    done["type"] = "fail"
        finally:
            if lock:
                lock.release()
        done["time"] = now()
        record(fd, done)
    os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=30)
    parser.add_argument("--tickets", type=int, default=10)
    parser.add_argument("--attempts", type=int, default=1, help="purchase attempts per buyer")
    parser.add_argument("--hold", type=float, default=0.01, help="seconds between read and write")
    parser.add_argument("--lock", action="store_true", help="hold a Lock from read to write")
    parser.add_argument("--stock", default="data.txt")
    parser.add_argument("--out", default="buyers.jsonl")
    args = parser.parse_args()

    with open(args.stock, "w") as f:
        f.write(str(args.tickets))
    open(args.out, "w").close()
    lock = Lock() if args.lock else None
    origin = time.monotonic_ns()
    buyers = [Process(target=buyer, args=(n, args, lock, origin)) for n in range(args.buyers)]
    for p in buyers:
        p.start()
    for p in buyers:
        p.join()

    # In time order, an invocation before a completion stamped at the same moment.
    with open(args.out) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    lines.sort(key=lambda e: (e["time"], e["type"] != "invoke"))
    with open(args.out, "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in lines)
    with open(args.stock) as f:
        final = f.read().strip()
    print(f"final stock: {final}")
    print(f"check it: sim check --history {args.out} --initial {args.tickets} --final {final}")


if __name__ == "__main__":
    main()
