"""The ticket sale of the example shop, shared by its HTTP server (shop.py) and its
command-mode buyer (buyer.py): one SQLite database holds the stock, the tickets sold and
the idempotency keys already answered.

The modes sell in four ways:

- racy: read the stock, hold a moment, then write one less, in two statements: two
  buyers who read the same stock both sell that ticket.
- locked: the same two statements under one lock (in the HTTP server a process-wide lock;
  in the command-mode buyer, where each buyer is its own process, SQLite's write lock,
  taken with BEGIN IMMEDIATE).
- atomic: UPDATE stock SET stock = stock - 1 WHERE stock > 0 RETURNING stock, one step.
- retry-unsafe: as atomic, but a sale forgets its idempotency key, so a purchase sent
  again sells again; with --fail-every it commits and then answers 503 now and then.

Standard library only: sqlite3 and threading.
"""

import sqlite3
import threading
import time

MODES = ("racy", "locked", "atomic", "retry-unsafe")

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (id INTEGER PRIMARY KEY CHECK (id = 1), stock INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, ticket INTEGER NOT NULL);
INSERT OR IGNORE INTO stock (id, stock) VALUES (1, 0);
"""


class SoldOut(Exception):
    """No ticket was left."""


class Shop:
    """One connection to the shop's database, as one thread or process sells through it."""

    # One lock for every thread of the process: the locked mode of the HTTP server.
    process_lock = threading.Lock()

    def __init__(self, db, mode, hold_ms=0.0, cross_process_lock=False):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = mode
        self.hold = hold_ms / 1000.0
        self.cross_process_lock = cross_process_lock
        # Autocommit: every statement is its own transaction unless BEGIN says otherwise.
        self.db = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 60000")

    @staticmethod
    def create(db):
        conn = sqlite3.connect(db, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        conn.close()

    def reset(self, stock):
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("UPDATE stock SET stock = ? WHERE id = 1", (stock,))
        self.db.execute("DELETE FROM keys")
        self.db.execute("COMMIT")

    def stock(self):
        return self.db.execute("SELECT stock FROM stock WHERE id = 1").fetchone()[0]

    def replayed(self, key):
        """The ticket already sold to this idempotency key, if any."""
        if key is None or self.mode == "retry-unsafe":
            return None
        row = self.db.execute("SELECT ticket FROM keys WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def remember(self, key, ticket):
        if key is not None and self.mode != "retry-unsafe":
            self.db.execute("INSERT OR REPLACE INTO keys (key, ticket) VALUES (?, ?)", (key, ticket))

    def buy(self, key=None):
        """Sells one ticket: the stock it was sold from. Raises SoldOut."""
        ticket = self.replayed(key)
        if ticket is not None:
            return ticket
        if self.mode == "racy":
            ticket = self._read_then_write()
        elif self.mode == "locked":
            ticket = self._locked()
        else:
            ticket = self._atomic()
        self.remember(key, ticket)
        return ticket

    def _read_then_write(self):
        stock = self.stock()
        time.sleep(self.hold)  # the race window: another buyer reads the same stock here
        if stock <= 0:
            raise SoldOut()
        self.db.execute("UPDATE stock SET stock = ? WHERE id = 1", (stock - 1,))
        return stock

    def _locked(self):
        if self.cross_process_lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                ticket = self._read_then_write()
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return ticket
        with Shop.process_lock:
            return self._read_then_write()

    def _atomic(self):
        time.sleep(self.hold)
        row = self.db.execute("UPDATE stock SET stock = stock - 1 WHERE id = 1 AND stock > 0 RETURNING stock").fetchone()
        if row is None:
            raise SoldOut()
        return row[0] + 1
