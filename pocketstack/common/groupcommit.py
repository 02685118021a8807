"""Group commit: concurrent write transactions share one commit.

On SQLite every write transaction is serialized (``BEGIN IMMEDIATE``) and each
commit waits for an fsync, so at concurrency 8 the disk, not the CPU, caps
writes (ports, server boots). Here the first writer to arrive becomes the leader: it takes
every queued unit of work (up to ``max_batch``), runs each in its own
SAVEPOINT inside one transaction, commits once and hands the results back;
the next queued writer then leads the next batch. A unit that fails rolls
back only its savepoint (its error goes to its caller, nothing it wrote
survives); a unit that hits a unique-key race is re-run. If the commit
itself fails every unit of the batch is re-run or gets the error. Every
caller returns only once its work is committed (durable), as with a
transaction of its own.

A unit gets what ``begin()`` yields: by default an ORM session
(``db.session``); ``begin=db.engine.begin`` gives a plain connection.

Used on SQLite only; PostgreSQL and MariaDB commit concurrently anyway.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy import exc

from pocketstack.common import errors
from pocketstack.common.db import is_retryable

LOG = logging.getLogger(__name__)


class _Unit:
    __slots__ = ("fn", "args", "kwargs", "result", "error", "done", "leader", "event")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.result = None
        self.error: BaseException | None = None
        self.done = False
        self.leader = False
        self.event = threading.Event()


class GroupCommit:
    def __init__(self, db, *, max_batch: int = 32, retries: int = 10, on_conflict=None,
                 begin=None):
        self.db = db
        self.begin = begin or db.session
        self.max_batch = max_batch
        self.retries = retries
        self.on_conflict = on_conflict or (lambda: None)
        self._lock = threading.Lock()
        self._queue: list[_Unit] = []
        self._busy = False
        self._local = threading.local()

    def run(self, fn, *args, **kwargs):
        session = getattr(self._local, "session", None)
        if session is not None:  # called from inside a unit: join its transaction
            with session.begin_nested():
                return fn(session, *args, **kwargs)
        unit = _Unit(fn, args, kwargs)
        with self._lock:
            self._queue.append(unit)
            if not self._busy:
                self._busy = True
                unit.leader = True
        while True:
            if unit.leader:
                self._lead()
                if unit.done:
                    break
            unit.event.wait()
            unit.event.clear()
            if unit.done:
                break
        if unit.error is not None:
            raise unit.error
        return unit.result

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
        try:
            self._run_batch(batch)
        finally:
            with self._lock:
                for unit in batch:
                    unit.done = True
                    unit.leader = False
                if self._queue:
                    nxt = self._queue[0]
                    nxt.leader = True
                    nxt.event.set()
                else:
                    self._busy = False
            for unit in batch:
                unit.event.set()

    def _run_batch(self, batch: list[_Unit]) -> None:
        for attempt in range(self.retries + 1):
            for unit in batch:
                unit.result, unit.error = None, None
            try:
                with self.begin() as session:
                    self._local.session = session
                    try:
                        for unit in batch:
                            self._run_unit(session, unit)
                    finally:
                        self._local.session = None
                return
            except exc.DBAPIError as error:
                self.on_conflict()
                if attempt < self.retries and (is_retryable(error) or
                                               isinstance(error, exc.IntegrityError)):
                    continue
                for unit in batch:
                    if unit.error is None:
                        unit.error = error
                return
            except BaseException as error:  # noqa: BLE001 - handed to every caller
                for unit in batch:
                    if unit.error is None:
                        unit.error = error
                return

    def _run_unit(self, session, unit: _Unit) -> None:
        # Plain SAVEPOINT statements: SQLAlchemy's nested-transaction object
        # costs more than a port's own statements.
        conn = session if isinstance(session, sa.Connection) else session.connection()
        for _ in range(self.retries + 1):
            conn.exec_driver_sql("SAVEPOINT unit")
            try:
                unit.result = unit.fn(session, *unit.args, **unit.kwargs)
            except exc.IntegrityError:  # a unique-key race: run it again
                self._undo(conn)
                self.on_conflict()
                continue
            except exc.DBAPIError:
                raise  # the whole batch is rolled back and re-run
            except Exception as error:  # noqa: BLE001 - this caller's error
                self._undo(conn)
                unit.result, unit.error = None, error
                return
            conn.exec_driver_sql("RELEASE SAVEPOINT unit")
            unit.error = None
            return
        unit.result = None
        unit.error = errors.Conflict("The request conflicted with a concurrent change; "
                                     "retry it.", kind="Conflict")

    @staticmethod
    def _undo(conn) -> None:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT unit")
        conn.exec_driver_sql("RELEASE SAVEPOINT unit")
