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

from pocketstack.common import errors
from pocketstack.common.db import Database
from pocketstack.objectstore import models

LOG = logging.getLogger(__name__)

C = models.container
O = models.object_  # noqa: E741
A = models.account


class ContainerGone(Exception):
    """The container was deleted while an object was being written into it."""


def _key(table):
    return (table.c.account == sa.bindparam("a")) & (table.c.container == sa.bindparam("c")) \
        & (table.c.name == sa.bindparam("n"))


# The hot statements, built once.
SEL_CONT = sa.select(C.c.object_count).where((C.c.account == sa.bindparam("a")) &
                                             (C.c.name == sa.bindparam("c")))
SEL_OLD = sa.select(O.c.size, O.c.etag, O.c.timestamp).where(_key(O))
INS_OBJ = O.insert()
UPD_OBJ = O.update().where(_key(O)).values(
    size=sa.bindparam("v_size"), etag=sa.bindparam("v_etag"),
    content_type=sa.bindparam("v_ct"), timestamp=sa.bindparam("v_ts"),
    delete_at=sa.bindparam("v_da"))
DEL_OBJ = O.delete().where(_key(O))
UPD_COUNTS = C.update().where((C.c.account == sa.bindparam("a")) &
                              (C.c.name == sa.bindparam("c"))).values(
    object_count=C.c.object_count + sa.bindparam("dn", type_=sa.BigInteger),
    bytes_used=C.c.bytes_used + sa.bindparam("db", type_=sa.BigInteger))


class Tx:
    """One batch's transaction: its connection and the container counters it moves
    (applied once per container per batch)."""

    __slots__ = ("index", "conn", "deltas")

    def __init__(self, index: Index, conn):
        self.index = index
        self.conn = conn
        self.deltas: dict[tuple[str, str], list[int]] = {}

    def require_container(self, account: str, container: str) -> None:
        key = (account, container)
        alive = self.index._alive
        if key in alive:
            return
        if self.conn.execute(SEL_CONT, {"a": account, "c": container}).first() is None:
            raise ContainerGone()
        if len(alive) > 100000:
            alive.clear()
        alive.add(key)

    def delta(self, account: str, container: str, count: int, size: int) -> None:
        d = self.deltas.setdefault((account, container), [0, 0])
        d[0] += count
        d[1] += size

    def flush(self) -> None:
        for (account, container), (count, size) in self.deltas.items():
            if count or size:
                self.conn.execute(UPD_COUNTS, {"a": account, "c": container, "dn": count,
                                               "db": size})
        self.deltas.clear()


class Index:
    def __init__(self, db: Database):
        self.db = db
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        # Containers known to exist; only the writer thread deletes containers.
        self._alive: set[tuple[str, str]] = set()

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

    def submit(self, op, *args, durable: bool = False) -> Future:
        """Queue ``op(tx, *args)``; the future resolves once it is committed.
        ``durable`` operations (container deletion) commit alone with a full sync,
        as they cannot be rebuilt from the files."""
        fut: Future = Future()
        if self._thread is None:
            self.start()
        if durable:
            fut.durable = True  # type: ignore[attr-defined]
        self._queue.put((op, args, fut))
        return fut

    def _connect(self):
        """The writer thread's own connection. On SQLite its commits append to the
        WAL without an fsync each (synchronous=NORMAL): an object's bytes and
        metadata are already durable on disk before its index row is written, and
        after an unclean stop the service rebuilds the index from the files
        (``ObjectStore.setup``). Container and account changes keep full syncs."""
        conn = self.db.engine.connect()
        if self.db.dialect == "sqlite":
            conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _run(self) -> None:
        conn = None
        try:
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
                if conn is None:
                    try:
                        conn = self._connect()
                    except Exception as exc:
                        for _op, _args, fut in batch:
                            fut.set_exception(exc)
                        continue
                plain = [b for b in batch if not getattr(b[2], "durable", False)]
                ok = self._apply(conn, plain) if plain else True
                for item in batch:
                    if not getattr(item[2], "durable", False):
                        continue
                    if ok:
                        ok = self._apply_durably(conn, item)
                    else:
                        item[2].set_exception(RuntimeError("index connection lost"))
                if not ok:
                    conn.invalidate()
                    conn.close()
                    conn = None
                if stop:
                    return
        finally:
            if conn is not None:
                if self.db.dialect == "sqlite":
                    conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")
                conn.close()

    def _apply_durably(self, conn, item) -> bool:
        sqlite = self.db.dialect == "sqlite"
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")
        try:
            return self._apply(conn, [item])
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")

    def _apply(self, conn, batch) -> bool:
        """Apply a batch in one transaction; False when the connection failed."""
        results = []
        try:
            with conn.begin():
                tx = Tx(self, conn)
                for op, args, _fut in batch:
                    try:  # operations refuse (raise) before they write anything
                        results.append((True, op(tx, *args)))
                    except (ContainerGone, errors.ApiError) as exc:
                        results.append((False, exc))
                tx.flush()
        except Exception as exc:  # the commit itself failed: retry each alone
            self._alive.clear()
            if len(batch) == 1:
                batch[0][2].set_exception(exc)
                return not isinstance(exc, sa.exc.DBAPIError) or not exc.connection_invalidated
            ok = True
            for item in batch:
                ok = self._apply(conn, [item]) and ok
            return ok
        for (_op, _args, fut), (ok, value) in zip(batch, results, strict=True):
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        return True

    # -- operations (run on the writer thread) --------------------------------

    @staticmethod
    def op_many(tx: Tx, ops) -> object:
        result = None
        for op, *args in ops:
            result = op(tx, *args)
        return result

    @staticmethod
    def op_put_object(tx: Tx, row: dict) -> dict | None:
        """Insert or replace an object row; returns the row it replaced."""
        a, c = row["account"], row["container"]
        tx.require_container(a, c)
        conn = tx.conn
        old = conn.execute(SEL_OLD, {"a": a, "c": c, "n": row["name"]}).first()
        if old is None:
            conn.execute(INS_OBJ, row)
            tx.delta(a, c, 1, row["size"])
            return None
        conn.execute(UPD_OBJ, {"a": a, "c": c, "n": row["name"], "v_size": row["size"],
                               "v_etag": row["etag"], "v_ct": row["content_type"],
                               "v_ts": row["timestamp"], "v_da": row["delete_at"]})
        tx.delta(a, c, 0, row["size"] - old.size)
        return dict(old._mapping)

    @staticmethod
    def op_delete_object(tx: Tx, account: str, container: str, name: str) -> bool:
        params = {"a": account, "c": container, "n": name}
        old = tx.conn.execute(SEL_OLD, params).first()
        if old is None:
            return False
        tx.conn.execute(DEL_OBJ, params)
        tx.delta(account, container, -1, -old.size)
        return True

    @staticmethod
    def op_update_object(tx: Tx, account: str, container: str, name: str,
                         values: dict) -> None:
        tx.conn.execute(O.update().where((O.c.account == account) &
                                         (O.c.container == container) &
                                         (O.c.name == name)).values(**values))

    @staticmethod
    def op_delete_container(tx: Tx, account: str, name: str) -> None:
        """Delete an empty container (here, so no object write races with it)."""
        tx.flush()
        conn = tx.conn
        row = conn.execute(sa.select(C.c.object_count).where(
            (C.c.account == account) & (C.c.name == name))).first()
        if row is None:
            raise errors.NotFound()
        any_object = conn.execute(sa.select(O.c.name).where(
            (O.c.account == account) & (O.c.container == name)).limit(1)).first()
        if row.object_count or any_object is not None:
            raise errors.Conflict("There was a conflict when trying to complete your "
                                  "request.")
        conn.execute(C.delete().where((C.c.account == account) & (C.c.name == name)))
        tx.index._alive.discard((account, name))

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
