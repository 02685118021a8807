"""The listing index (SQL), written by one thread that commits in groups.

Every object PUT/DELETE ends with an index update that must be durable before
the client hears back. Committing each alone would cost one database commit
(an fsync) per object; instead updates queue to one writer thread that applies
whatever is waiting in a single transaction: concurrent uploads share commits
(group commit), and because one thread applies them all, reading the old row
and adjusting the container's counters needs no further locking.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

import sqlalchemy as sa

from pocketstack.common.db import Database
from pocketstack.objectstore import models

LOG = logging.getLogger(__name__)

C = models.container
O = models.object_  # noqa: E741
A = models.account


class ContainerGone(Exception):
    """The container was deleted while an object was being written into it."""


class Index:
    def __init__(self, db: Database):
        self.db = db
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    # -- the writer thread ------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="objectstore-index",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def submit(self, op, *args) -> Future:
        """Queue ``op(conn, *args)``; the future resolves once it is committed."""
        fut: Future = Future()
        if self._thread is None:
            self.start()
        self._queue.put((op, args, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < 256:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._apply(batch)
            if stop:
                return

    def _apply(self, batch) -> None:
        results = []
        try:
            with self.db.engine.begin() as conn:
                for op, args, _fut in batch:
                    try:
                        with conn.begin_nested() if len(batch) > 1 else _null():
                            results.append((True, op(conn, *args)))
                    except ContainerGone as exc:
                        results.append((False, exc))
        except Exception as exc:  # the commit itself failed: retry each alone
            if len(batch) == 1:
                batch[0][2].set_exception(exc)
                return
            for item in batch:
                self._apply([item])
            return
        for (_op, _args, fut), (ok, value) in zip(batch, results, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    # -- operations (run on the writer thread) --------------------------------

    @staticmethod
    def op_put_object(conn, row: dict) -> dict | None:
        """Insert or replace an object row; returns the row it replaced."""
        key = (O.c.account == row["account"]) & (O.c.container == row["container"]) & \
            (O.c.name == row["name"])
        cont = (C.c.account == row["account"]) & (C.c.name == row["container"])
        if conn.execute(sa.select(C.c.object_count).where(cont)).first() is None:
            raise ContainerGone()
        old = conn.execute(sa.select(O.c.size, O.c.etag, O.c.timestamp).where(key)).first()
        if old is None:
            conn.execute(O.insert().values(**row))
            conn.execute(C.update().where(cont).values(
                object_count=C.c.object_count + 1, bytes_used=C.c.bytes_used + row["size"]))
            return None
        conn.execute(O.update().where(key).values(
            size=row["size"], etag=row["etag"], content_type=row["content_type"],
            timestamp=row["timestamp"], delete_at=row["delete_at"]))
        if row["size"] != old.size:
            conn.execute(C.update().where(cont).values(
                bytes_used=C.c.bytes_used + (row["size"] - old.size)))
        return dict(old._mapping)

    @staticmethod
    def op_delete_object(conn, account: str, container: str, name: str) -> bool:
        key = (O.c.account == account) & (O.c.container == container) & (O.c.name == name)
        old = conn.execute(sa.select(O.c.size).where(key)).first()
        if old is None:
            return False
        conn.execute(O.delete().where(key))
        conn.execute(C.update().where((C.c.account == account) & (C.c.name == container))
                     .values(object_count=C.c.object_count - 1,
                             bytes_used=C.c.bytes_used - old.size))
        return True

    @staticmethod
    def op_update_object(conn, account: str, container: str, name: str, values: dict) -> None:
        conn.execute(O.update().where((O.c.account == account) & (O.c.container == container)
                                      & (O.c.name == name)).values(**values))

    # -- reads ------------------------------------------------------------------

    def object_row(self, account: str, container: str, name: str):
        with self.db.read_engine.connect() as conn:
            return conn.execute(sa.select(O).where(
                (O.c.account == account) & (O.c.container == container) & (O.c.name == name))
            ).first()

    def container_stats(self, account: str, container: str) -> tuple[int, int]:
        with self.db.read_engine.connect() as conn:
            row = conn.execute(sa.select(C.c.object_count, C.c.bytes_used).where(
                (C.c.account == account) & (C.c.name == container))).first()
        return (row.object_count, row.bytes_used) if row else (0, 0)

    def account_stats(self, account: str) -> tuple[int, int, int]:
        with self.db.read_engine.connect() as conn:
            row = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(C.c.object_count), 0),
                sa.func.coalesce(sa.func.sum(C.c.bytes_used), 0)).where(
                C.c.account == account)).first()
        return int(row[0]), int(row[1]), int(row[2])

    def expired(self, now: int, limit: int = 1000) -> list:
        with self.db.read_engine.connect() as conn:
            return conn.execute(sa.select(O.c.account, O.c.container, O.c.name, O.c.timestamp)
                                .where(O.c.delete_at.is_not(None) & (O.c.delete_at <= now))
                                .limit(limit)).all()

    def list_names(self, table, where, col, *, prefix: str, marker: str, end_marker: str,
                   reverse: bool, limit: int, columns) -> list:
        """One keyset page of rows (no delimiter handling)."""
        conds = [where]
        if prefix:
            conds.append(col >= prefix)
            upper = _prefix_upper(prefix)
            if upper is not None:
                conds.append(col < upper)
        if reverse:
            if marker:
                conds.append(col < marker)
            if end_marker:
                conds.append(col > end_marker)
        else:
            if marker:
                conds.append(col > marker)
            if end_marker:
                conds.append(col < end_marker)
        query = sa.select(*columns).where(*conds).order_by(
            col.desc() if reverse else col).limit(limit)
        with self.db.read_engine.connect() as conn:
            return conn.execute(query).all()

    def listing(self, table, where, col, columns, *, prefix="", delimiter="", marker="",
                end_marker="", reverse=False, limit=10000) -> list:
        """Rows and ``{"subdir": ...}`` entries as Swift lists them."""
        if not delimiter:
            return self.list_names(table, where, col, prefix=prefix, marker=marker,
                                   end_marker=end_marker, reverse=reverse, limit=limit,
                                   columns=columns)
        out: list = []
        while len(out) < limit:
            want = limit - len(out)
            rows = self.list_names(table, where, col, prefix=prefix, marker=marker,
                                   end_marker=end_marker, reverse=reverse,
                                   limit=want, columns=columns)
            if not rows:
                break
            jumped = False
            for row in rows:
                name = row.name
                rest = name[len(prefix):]
                at = rest.find(delimiter)
                if at >= 0:
                    subdir = prefix + rest[:at + len(delimiter)]
                    if not out or out[-1] != {"subdir": subdir}:
                        out.append({"subdir": subdir})
                    # Skip every name under this subdir.
                    if reverse:
                        marker = subdir
                    else:
                        marker = subdir[:-1] + chr(ord(subdir[-1]) + 1)
                    jumped = True
                    break
                out.append(row)
                marker = name
                if len(out) >= limit:
                    break
            if not jumped and len(rows) < want:
                break
        return out


def _prefix_upper(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
