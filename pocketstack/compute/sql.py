"""Statements of compute's hot paths, built once.

Building a SQLAlchemy statement costs far more than running it on SQLite
(hundreds of microseconds against tens), so the statements a boot, a state
change or a server show run are built here at import, with bind parameters,
and run on plain connections (``Fast``) rather than ORM sessions.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc

from pocketstack.common.db import UTCDateTime, is_retryable
from pocketstack.common.groupcommit import GroupCommit
from pocketstack.compute import models as m

bp = sa.bindparam
INST = m.instance
N = m.compute_node

SELECT_INSTANCE = sa.select(INST).where(INST.c.uuid == bp("uuid"))
SELECT_QUOTAS = sa.select(m.quota.c.resource, m.quota.c.hard_limit).where(
    m.quota.c.project_id == bp("project_id"))
USAGE = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(INST.c.vcpus), 0),
                  sa.func.coalesce(sa.func.sum(INST.c.memory_mb), 0)).where(
    INST.c.project_id == bp("project_id"), INST.c.deleted.is_(False))
GROUP_COUNT = sa.select(sa.func.count()).select_from(m.server_group).where(
    m.server_group.c.project_id == bp("project_id"))
LOCK_PROJECT = m.project_lock.update().where(
    m.project_lock.c.project_id == bp("_project_id")).values(
    generation=m.project_lock.c.generation + 1)
INSERT_LOCK = m.project_lock.insert()
INSERT_INSTANCE = INST.insert()
INSERT_ACTION = m.instance_action.insert()
INSERT_MEMBER = m.server_group_member.insert()
SERVICES = sa.select(m.service).where(m.service.c.binary == bp("binary"))
AGGREGATE_HOSTS = sa.select(m.aggregate.c.meta, m.aggregate_host.c.host).join(m.aggregate_host)
NODES = sa.select(N)
LAST_ACTION = sa.select(m.instance_action).where(
    m.instance_action.c.instance_uuid == bp("uuid")).order_by(
    m.instance_action.c.id.desc()).limit(1)
UPDATE_ACTION = m.instance_action.update().where(m.instance_action.c.id == bp("_id"))
PLACE = INST.update().where(INST.c.uuid == bp("_uuid"))


_JSON = {c.key for c in INST.c if isinstance(c.type, m.JSONType)}
_TIMES = {c.key for c in INST.c if isinstance(c.type, UTCDateTime)}


def plain_select(columns) -> sa.Select:
    """A select of instance columns whose JSON documents and timestamps come back as
    the driver returns them, for ``decode_rows``."""
    return sa.select(*[sa.type_coerce(c, sa.Text).label(c.key) if c.key in _JSON else
                       sa.type_coerce(c, sa.String).label(c.key) if c.key in _TIMES else c
                       for c in columns])


def decode_rows(result) -> list[dict]:
    """The rows of a ``plain_select`` as dicts, decoded in one pass (a page of a
    thousand servers costs several times less than with SQLAlchemy's per-value
    types). Timestamps stay naive (UTC), as the views print them."""
    keys = list(result.keys())
    docs = [i for i, k in enumerate(keys) if k in _JSON]
    times = [i for i, k in enumerate(keys) if k in _TIMES]
    loads, parse = m.loads, datetime.datetime.fromisoformat
    out = []
    for r in result.all():
        r = list(r)
        for i in docs:
            if r[i] is not None:
                r[i] = loads(r[i])
        for i in times:
            if isinstance(r[i], str):
                r[i] = parse(r[i])
        out.append(dict(zip(keys, r, strict=True)))
    return out


def claim_statement(cpu_ratio: float, ram_ratio: float, disk_ratio: float,
                    reserved_mb: int):
    return N.update().where(
        N.c.host == bp("_host"),
        N.c.vcpus_used + bp("_vcpus") <= N.c.vcpus * cpu_ratio,
        N.c.memory_mb_used + bp("_ram") <= (N.c.memory_mb - reserved_mb) * ram_ratio,
        N.c.local_gb_used + bp("_disk") <= N.c.local_gb * disk_ratio,
    ).values(vcpus_used=N.c.vcpus_used + bp("_vcpus"),
             memory_mb_used=N.c.memory_mb_used + bp("_ram"),
             local_gb_used=N.c.local_gb_used + bp("_disk"),
             running_vms=N.c.running_vms + 1)


_update_cache: dict[tuple, sa.Update] = {}
_update_lock = threading.Lock()


def instance_update(keys: tuple[str, ...], vm_states: bool, task_any: bool,
                    task_null: bool):
    """UPDATE compute_instance SET <keys> WHERE uuid AND not deleted [AND expected states]."""
    key = (keys, vm_states, task_any, task_null)
    stmt = _update_cache.get(key)
    if stmt is None:
        stmt = INST.update().where(INST.c.uuid == bp("_uuid"), INST.c.deleted.is_(False))
        if vm_states:
            stmt = stmt.where(INST.c.vm_state.in_(bp("_vm_states", expanding=True)))
        if task_any or task_null:
            conds = []
            if task_any:
                conds.append(INST.c.task_state.in_(bp("_task_states", expanding=True)))
            if task_null:
                conds.append(INST.c.task_state.is_(None))
            stmt = stmt.where(sa.or_(*conds))
        elif task_any is False and task_null is False and vm_states is None:
            pass
        # SET values come from the parameters named like the columns
        with _update_lock:
            _update_cache[key] = stmt
    return stmt


class Fast:
    """Transactions on plain connections, with the deadlock retries of common.db."""

    def __init__(self, db):
        self.db = db
        # SQLite has one writer at a time: concurrent writers of this process share
        # commits (one fsync for a batch) instead of queueing for the lock one by one.
        self._group = GroupCommit(db, retries=db.max_retries, begin=db.engine.begin) \
            if db.dialect == "sqlite" else None

    def tx(self, fn, *args, **kwargs):
        if self._group is not None:
            return self._group.run(fn, *args, **kwargs)
        return self._tx(fn, *args, **kwargs)

    def _tx(self, fn, *args, **kwargs):
        db = self.db
        for attempt in range(db.max_retries + 1):
            try:
                with db.engine.begin() as conn:
                    return fn(conn, *args, **kwargs)
            except exc.DBAPIError as error:
                if attempt >= db.max_retries or not is_retryable(error):
                    raise
                time.sleep(random.uniform(0, 0.01 * (2 ** min(attempt, 6))))

    @contextmanager
    def read(self):
        with self.db.read_engine.begin() as conn:
            yield conn
