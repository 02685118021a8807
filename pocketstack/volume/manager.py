"""Block storage business rules: the state machine, quotas, scheduling and the
driver work (run on a worker pool, as cinder-volume does it).

This is also the in-process interface the other services use:

- compute (Nova's attach flow): ``attachment_create`` (reserve), then
  ``attachment_update`` with the host's connector (returns the connection
  info: a file path or an ``nfs://`` URL), ``attachment_complete``, and
  ``attachment_delete`` to detach; ``create_volume`` / ``get_volume`` /
  ``wait_volume`` / ``delete_volume`` for boot from volume.
- image: volumes from images and uploads go through ``integration.ImageClient``.
- object storage: backups go through ``integration.BackupStore``.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database, is_retryable, utcnow
from pocketstack.volume import drivers, models, options
from pocketstack.volume.drivers.base import Driver, DriverError, GiB
from pocketstack.volume.scheduler import NoValidBackend, Scheduler

LOG = logging.getLogger(__name__)

V, S, T, A, B = models.volume, models.snapshot, models.volume_type, models.attachment, \
    models.backup

DELETABLE = {"available", "error", "error_restoring", "error_extending", "error_managing"}
QUOTA_RESOURCES = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
                   "per_volume_gigabytes", "groups")


@dataclass
class Backend:
    name: str  # section name
    backend_name: str  # volume_backend_name
    availability_zone: str
    driver: Driver
    max_over_subscription_ratio: float
    reserved_percentage: int
    thin: bool
    host: str


class _NeedLockRow(Exception):
    pass


def _quota_transaction(fn):
    """Run a method whose transaction checks quota: the project's lock row is
    created on first use, and deadlocks (MariaDB, PostgreSQL) are retried."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        attempt = 0
        while True:
            try:
                return fn(self, *args, **kwargs)
            except _NeedLockRow as need:
                self.ensure_lock_row(need.args[0])
            except sa_exc.DBAPIError as error:
                if attempt >= self.db.max_retries or not is_retryable(error):
                    raise
                time.sleep(random.uniform(0, 0.01 * (2 ** min(attempt, 6))))
            attempt += 1

    return wrapper


def invalid_volume(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid volume: {message}")


def _new_id() -> str:
    return str(uuid.uuid4())


class VolumeManager:
    def __init__(self, conf, db: Database, cloud=None):
        self.conf = conf
        self.db = db
        self.cloud = cloud
        self.backends: dict[str, Backend] = {}
        self.scheduler = Scheduler(self.backends, self._provisioned)
        self.executor = ThreadPoolExecutor(max_workers=conf.volume_workers_pool,
                                           thread_name_prefix="volume-worker")
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None
        self._committer: threading.Thread | None = None
        import queue

        self._created: queue.Queue = queue.Queue()
        self._volume_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.default_zone = conf.default_availability_zone or conf.storage_availability_zone
        self.loop = None  # the server's event loop, set by the service once it runs
        from pocketstack.volume import integration

        self.images = integration.ImageClient(self)
        self.backup_store = integration.BackupStore(self)

    # -- lifecycle -----------------------------------------------------------------

    def setup_backends(self) -> None:
        for name in self.conf.enabled_backends:
            options.register_backend(self.conf, name)
            opts = self.conf[name]
            driver = drivers.load(name, opts, self.conf)
            try:
                driver.setup()
            except DriverError as exc:
                LOG.error("volume backend %s is not usable: %s", name, exc)
                continue
            thin = opts.file_sparsed_volumes if opts.volume_driver == "file" \
                else opts.nfs_sparsed_volumes
            self.backends[name] = Backend(
                name=name, backend_name=opts.volume_backend_name or name,
                availability_zone=opts.backend_availability_zone
                or self.conf.storage_availability_zone,
                driver=driver, max_over_subscription_ratio=opts.max_over_subscription_ratio
                if thin else 1.0, reserved_percentage=opts.reserved_percentage, thin=thin,
                host=f"{self.conf.host}@{name}")

    def start(self) -> None:
        self.setup_backends()
        self.scheduler.refresh()
        self.ensure_default_type()
        self.recover()
        self._janitor = threading.Thread(target=self._janitor_loop, daemon=True,
                                         name="volume-janitor")
        self._janitor.start()
        self._committer = threading.Thread(target=self._commit_created_loop, daemon=True,
                                           name="volume-created")
        self._committer.start()

    def stop(self) -> None:
        self._stop.set()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._created.put(None)
        if self._committer is not None:
            self._committer.join(10)
        for be in self.backends.values():
            be.driver.close()

    def recover(self) -> None:
        """After a restart: work that was in flight is finished or marked failed."""
        with self.db.session() as s:
            s.execute(V.update().where(V.c.status.in_(["creating", "downloading"]))
                      .values(status="error", updated_at=utcnow()))
            s.execute(V.update().where(V.c.status.in_(["extending"]))
                      .values(status="error_extending", updated_at=utcnow()))
            s.execute(V.update().where(V.c.status.in_(["backing-up", "uploading"]))
                      .values(status="available", updated_at=utcnow()))
            s.execute(S.update().where(S.c.status == "creating")
                      .values(status="error", updated_at=utcnow()))
            s.execute(B.update().where(B.c.status.in_(["creating", "restoring"]))
                      .values(status="error", updated_at=utcnow()))
            deleting = s.execute(sa.select(V.c.id).where(V.c.status == "deleting")).scalars().all()
            snaps = s.execute(sa.select(S.c.id).where(S.c.status == "deleting")).scalars().all()
        for vid in deleting:
            self.executor.submit(self._do_delete_volume, vid)
        for sid in snaps:
            self.executor.submit(self._do_delete_snapshot, sid)

    def run_async(self, coro, timeout: float | None = None):
        """Run a coroutine of another service's manager from a worker thread."""
        import asyncio

        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return asyncio.run(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def volume_lock(self, volume_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._volume_locks.setdefault(volume_id, threading.Lock())

    def backend(self, name: str | None) -> Backend:
        be = self.backends.get(name or "")
        if be is None:
            raise DriverError(f"backend {name} is not running on this host")
        return be

    def _submit(self, fn, *args) -> None:
        if self._stop.is_set():
            return
        self.executor.submit(self._guarded, fn, *args)

    @staticmethod
    def _guarded(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            LOG.exception("volume work %s failed", getattr(fn, "__name__", fn))

    # -- messages (user-visible failure reasons) ---------------------------------------

    def add_message(self, project_id: str, resource_type: str, resource_id: str,
                    text: str, request_id: str | None = None) -> None:
        now = utcnow()
        with self.db.session() as s:
            s.execute(models.message.insert().values(
                id=_new_id(), project_id=project_id, request_id=request_id,
                resource_type=resource_type, resource_uuid=resource_id, event_id="VOLUME_000001",
                message_level="ERROR", user_message=text[:255], created_at=now,
                expires_at=now + datetime.timedelta(days=30)))

    def list_messages(self, ctx: RequestContext) -> list[dict]:
        q = sa.select(models.message).order_by(models.message.c.created_at.desc())
        if not ctx.is_admin:
            q = q.where(models.message.c.project_id == ctx.project_id)
        with self.db.reader() as s:
            return [dict(r._mapping) for r in s.execute(q)]

    def get_message(self, ctx: RequestContext, message_id: str) -> dict:
        with self.db.reader() as s:
            row = s.execute(sa.select(models.message).where(
                models.message.c.id == message_id)).first()
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise errors.NotFound(f"Message {message_id} could not be found.")
        return dict(row._mapping)

    def delete_message(self, ctx: RequestContext, message_id: str) -> None:
        self.get_message(ctx, message_id)
        with self.db.session() as s:
            s.execute(models.message.delete().where(models.message.c.id == message_id))

    # -- volume types ----------------------------------------------------------------

    def ensure_default_type(self) -> None:
        name = self.conf.default_volume_type
        with self.db.session() as s:
            if s.execute(sa.select(T.c.id).where(T.c.name == name)).first() is None:
                try:
                    with s.begin_nested():
                        s.execute(T.insert().values(
                            id=_new_id(), name=name, description="Default Volume Type",
                            is_public=True, extra_specs={}, created_at=utcnow()))
                except sa_exc.IntegrityError:
                    pass

    def _type_visible(self, s, ctx: RequestContext, row) -> bool:
        if row.is_public or ctx.is_admin:
            return True
        return s.execute(sa.select(models.type_access).where(
            models.type_access.c.volume_type_id == row.id,
            models.type_access.c.project_id == ctx.project_id)).first() is not None

    def get_type(self, ctx: RequestContext, type_id: str, s=None) -> dict:
        def read(s):
            row = s.execute(sa.select(T).where(T.c.id == type_id)).first()
            if row is None:
                row = s.execute(sa.select(T).where(T.c.name == type_id)).first()
            if row is None or not self._type_visible(s, ctx, row):
                raise errors.NotFound(f"Volume type {type_id} could not be found.")
            return dict(row._mapping)

        if s is not None:
            return read(s)
        with self.db.reader() as s:
            return read(s)

    def default_type(self, s) -> dict:
        row = s.execute(sa.select(T).where(T.c.name == self.conf.default_volume_type)).first()
        if row is None:
            row = s.execute(sa.select(T).order_by(T.c.created_at)).first()
        return dict(row._mapping) if row is not None else None

    def list_types(self, ctx: RequestContext, is_public: bool | None = None) -> list[dict]:
        with self.db.reader() as s:
            rows = s.execute(sa.select(T).order_by(T.c.name)).all()
            result = []
            for row in rows:
                if is_public is not None and ctx.is_admin and row.is_public != is_public:
                    continue
                if not self._type_visible(s, ctx, row):
                    continue
                if not ctx.is_admin and is_public is None and not row.is_public and \
                        not self._type_visible(s, ctx, row):
                    continue
                result.append(dict(row._mapping))
            return result

    def create_type(self, ctx: RequestContext, name: str, description: str | None,
                    is_public: bool, extra_specs: dict) -> dict:
        row = {"id": _new_id(), "name": name, "description": description,
               "is_public": is_public, "extra_specs": extra_specs, "created_at": utcnow()}
        try:
            with self.db.session() as s:
                if s.execute(sa.select(T.c.id).where(T.c.name == name)).first():
                    raise errors.Conflict(f"Volume Type {name} already exists.")
                s.execute(T.insert().values(**row))
        except sa_exc.IntegrityError:
            raise errors.Conflict(f"Volume Type {name} already exists.") from None
        return row

    def update_type(self, ctx: RequestContext, type_id: str, values: dict) -> dict:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            if "name" in values and values["name"] != current["name"]:
                if s.execute(sa.select(T.c.id).where(T.c.name == values["name"])).first():
                    raise errors.Conflict(f"Volume Type {values['name']} already exists.")
            values = {**values, "updated_at": utcnow()}
            s.execute(T.update().where(T.c.id == current["id"]).values(**values))
            return {**current, **values}

    def delete_type(self, ctx: RequestContext, type_id: str) -> None:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            if current["name"] == self.conf.default_volume_type:
                raise errors.BadRequest("Default volume type can not be deleted.")
            if s.execute(sa.select(V.c.id).where(V.c.volume_type_id == current["id"])
                         .limit(1)).first():
                raise errors.BadRequest("Target volume type is still in use.")
            s.execute(models.type_access.delete().where(
                models.type_access.c.volume_type_id == current["id"]))
            s.execute(T.delete().where(T.c.id == current["id"]))

    def set_extra_specs(self, ctx: RequestContext, type_id: str, specs: dict) -> dict:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            merged = {**current["extra_specs"], **specs}
            s.execute(T.update().where(T.c.id == current["id"]).values(
                extra_specs=merged, updated_at=utcnow()))
            return merged

    def delete_extra_spec(self, ctx: RequestContext, type_id: str, key: str) -> None:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            specs = dict(current["extra_specs"])
            if key not in specs:
                raise errors.NotFound(f"Volume Type {type_id} has no extra specs with key "
                                      f"{key}.")
            del specs[key]
            s.execute(T.update().where(T.c.id == current["id"]).values(extra_specs=specs))

    def type_access(self, ctx: RequestContext, type_id: str) -> list[dict]:
        with self.db.reader() as s:
            current = self.get_type(ctx, type_id, s)
            if current["is_public"]:
                raise errors.NotFound("Access list not available for public volume types.")
            rows = s.execute(sa.select(models.type_access).where(
                models.type_access.c.volume_type_id == current["id"])).all()
            return [dict(r._mapping) for r in rows]

    def add_type_access(self, ctx: RequestContext, type_id: str, project_id: str) -> None:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            if current["is_public"]:
                raise errors.BadRequest("Invalid volume type: Type access modification is "
                                        "not applicable to public volume type.")
            exists = s.execute(sa.select(models.type_access).where(
                models.type_access.c.volume_type_id == current["id"],
                models.type_access.c.project_id == project_id)).first()
            if exists:
                raise errors.Conflict(f"Volume type access for {type_id}/{project_id} "
                                      "combination already exists.")
            s.execute(models.type_access.insert().values(volume_type_id=current["id"],
                                                         project_id=project_id))

    def remove_type_access(self, ctx: RequestContext, type_id: str, project_id: str) -> None:
        with self.db.session() as s:
            current = self.get_type(ctx, type_id, s)
            result = s.execute(models.type_access.delete().where(
                models.type_access.c.volume_type_id == current["id"],
                models.type_access.c.project_id == project_id))
            if result.rowcount == 0:
                raise errors.NotFound(f"Volume type access not found for {type_id}/"
                                      f"{project_id} combination.")

    # -- quotas ----------------------------------------------------------------------------

    def quota_defaults(self) -> dict[str, int]:
        c = self.conf
        return {"volumes": c.quota_volumes, "snapshots": c.quota_snapshots,
                "gigabytes": c.quota_gigabytes, "backups": c.quota_backups,
                "backup_gigabytes": c.quota_backup_gigabytes,
                "per_volume_gigabytes": c.per_volume_size_limit, "groups": 10}

    def quota_limits(self, s, project_id: str, type_names: list[str] | None = None) -> dict:
        limits = dict(self.quota_defaults())
        for name in type_names if type_names is not None else self._type_names(s):
            for res in ("volumes", "snapshots", "gigabytes"):
                limits[f"{res}_{name}"] = -1
        for row in s.execute(sa.select(models.quota).where(
                models.quota.c.project_id == project_id)):
            limits[row.resource] = row.hard_limit
        return limits

    def _type_names(self, s) -> list[str]:
        return list(s.execute(sa.select(T.c.name)).scalars())

    def usage(self, s, project_id: str, wanted: set[str] | None = None) -> dict[str, int]:
        """What the project uses; ``wanted`` limits the counting to those resources."""
        used: dict[str, int] = {}

        def q(stmt):
            # MariaDB's repeatable read would count from the transaction's first
            # snapshot; a locking read sees what concurrent creates committed
            return stmt.with_for_update(read=True) if self.db.dialect == "mysql" else stmt

        def want(*names) -> bool:
            return wanted is None or any(n in wanted for n in names)

        per_type = wanted is None or any("_" in w and not w.startswith("backup")
                                         and w != "per_volume_gigabytes" for w in wanted)
        if want("volumes", "gigabytes") or per_type:
            if per_type:
                vrows = s.execute(q(sa.select(T.c.name, sa.func.count(V.c.id),
                                              sa.func.sum(V.c.size))
                                    .select_from(V.outerjoin(T, T.c.id == V.c.volume_type_id))
                                    .where(V.c.project_id == project_id)
                                    .group_by(T.c.name))).all()
            else:
                vrows = s.execute(q(sa.select(sa.null(), sa.func.count(V.c.id),
                                              sa.func.sum(V.c.size))
                                    .where(V.c.project_id == project_id))).all()
            used["volumes"] = sum(r[1] for r in vrows)
            used["gigabytes"] = sum(r[2] or 0 for r in vrows)
            for name, count, size in vrows:
                if name:
                    used[f"volumes_{name}"] = count
                    used[f"gigabytes_{name}"] = used.get(f"gigabytes_{name}", 0) + (size or 0)
        if want("snapshots", "gigabytes") or per_type:
            if per_type:
                srows = s.execute(q(sa.select(T.c.name, sa.func.count(S.c.id),
                                              sa.func.sum(S.c.size))
                                    .select_from(S.outerjoin(T, T.c.id == S.c.volume_type_id))
                                    .where(S.c.project_id == project_id)
                                    .group_by(T.c.name))).all()
            else:
                srows = s.execute(q(sa.select(sa.null(), sa.func.count(S.c.id),
                                              sa.func.sum(S.c.size))
                                    .where(S.c.project_id == project_id))).all()
            used["snapshots"] = sum(r[1] for r in srows)
            used["gigabytes"] = used.get("gigabytes", 0) + sum(r[2] or 0 for r in srows)
            for name, count, size in srows:
                if name:
                    used[f"snapshots_{name}"] = count
                    used[f"gigabytes_{name}"] = used.get(f"gigabytes_{name}", 0) + (size or 0)
        if want("backups", "backup_gigabytes"):
            brow = s.execute(q(sa.select(sa.func.count(B.c.id), sa.func.sum(B.c.size))
                               .where(B.c.project_id == project_id))).first()
            used["backups"] = brow[0]
            used["backup_gigabytes"] = brow[1] or 0
        return used

    def _lock_project(self, s, project_id: str) -> None:
        """Lock the project's row (created beforehand in its own transaction, so
        concurrent first creates never fight over an insert)."""
        L = models.quota_lock
        row = s.execute(sa.select(L).where(L.c.project_id == project_id)
                        .with_for_update()).first()
        if row is None:
            raise _NeedLockRow(project_id)

    def ensure_lock_row(self, project_id: str) -> None:
        L = models.quota_lock
        with self.db.reader() as s:
            if s.execute(sa.select(L).where(L.c.project_id == project_id)).first():
                return
        try:
            with self.db.session() as s:
                if not s.execute(sa.select(L).where(L.c.project_id == project_id)).first():
                    s.execute(L.insert().values(project_id=project_id))
        except sa_exc.IntegrityError:
            pass

    def check_quota(self, s, project_id: str, deltas: dict[str, int]) -> None:
        """Lock the project's quota row and refuse deltas that go over a limit (413)."""
        self._lock_project(s, project_id)
        limits = self.quota_limits(s, project_id, type_names=[])
        wanted = {res for res, delta in deltas.items() if delta > 0 and limits.get(res, -1) >= 0}
        if not wanted:
            return
        used = self.usage(s, project_id, wanted)
        for res in sorted(wanted):
            limit, delta, have = limits[res], deltas[res], used.get(res, 0)
            if have + delta <= limit:
                continue
            if "gigabytes" in res:
                msg = (f"Requested volume or snapshot exceeds allowed {res} quota. "
                       f"Requested {delta}G, quota is {limit}G and {have}G has been consumed.")
            elif res.startswith("snapshots"):
                msg = f"Maximum number of snapshots allowed ({limit}) exceeded"
            elif res.startswith("backups"):
                msg = f"Maximum number of backups allowed ({limit}) exceeded"
            else:
                msg = f"Maximum number of volumes allowed ({limit}) exceeded for quota '{res}'."
            raise errors.RequestEntityTooLarge(msg)

    def get_quotas(self, ctx: RequestContext, project_id: str, usage: bool = False) -> dict:
        with self.db.reader() as s:
            limits = self.quota_limits(s, project_id)
            if not usage:
                return limits
            used = self.usage(s, project_id)
        return {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0, "allocated": 0}
                for k, v in limits.items()}

    def set_quotas(self, ctx: RequestContext, project_id: str, values: dict[str, int]) -> dict:
        with self.db.session() as s:
            known = self.quota_limits(s, project_id)
            for key, value in values.items():
                if key not in known:
                    raise errors.BadRequest(f"Bad key(s) in quota set: {key}")
                if value < -1:
                    raise errors.BadRequest(f"Quota limit {value} for {key} must be -1 or "
                                            "greater.")
                Q = models.quota
                s.execute(Q.delete().where(Q.c.project_id == project_id, Q.c.resource == key))
                s.execute(Q.insert().values(project_id=project_id, resource=key,
                                            hard_limit=value))
        return self.get_quotas(ctx, project_id)

    def delete_quotas(self, ctx: RequestContext, project_id: str) -> None:
        with self.db.session() as s:
            s.execute(models.quota.delete().where(models.quota.c.project_id == project_id))

    # -- volumes: reading --------------------------------------------------------------

    def _visible(self, ctx: RequestContext, project_id: str) -> bool:
        return ctx.is_admin or ctx.project_id == project_id

    def _volume_row(self, s, ctx: RequestContext, volume_id: str, lock: bool = False):
        q = sa.select(V).where(V.c.id == volume_id)
        if lock:
            q = q.with_for_update()
        row = s.execute(q).first()
        if row is None or not self._visible(ctx, row.project_id):
            raise errors.NotFound(f"Volume {volume_id} could not be found.")
        return dict(row._mapping)

    def attachments_of(self, s, volume_ids: list[str]) -> dict[str, list[dict]]:
        result: dict[str, list[dict]] = {v: [] for v in volume_ids}
        if not volume_ids:
            return result
        for row in s.execute(sa.select(A).where(A.c.volume_id.in_(volume_ids))
                             .order_by(A.c.created_at)):
            result[row.volume_id].append(dict(row._mapping))
        return result

    def types_by_id(self, s) -> dict[str, dict]:
        return {r.id: dict(r._mapping) for r in s.execute(sa.select(T))}

    def get_volume(self, ctx: RequestContext, volume_id: str) -> dict:
        with self.db.reader() as s:
            vol = self._volume_row(s, ctx, volume_id)
            vol["attachments"] = self.attachments_of(s, [volume_id])[volume_id]
            vol["volume_type"] = self.types_by_id(s).get(vol["volume_type_id"])
            return vol

    def wait_volume(self, ctx: RequestContext, volume_id: str, statuses=("available",),
                    timeout: float = 300.0) -> dict:
        """Block until the volume reaches one of ``statuses`` (or error)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            vol = self.get_volume(ctx, volume_id)
            if vol["status"] in statuses:
                return vol
            if vol["status"].startswith("error"):
                raise errors.Conflict(f"Volume {volume_id} went to status {vol['status']}.")
            if time.monotonic() > deadline:
                raise errors.Conflict(f"Volume {volume_id} is still {vol['status']}.")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def list_volumes(self, ctx: RequestContext, filters: dict, all_tenants: bool,
                     sort, limit, marker_id: str | None, offset: int = 0,
                     with_count: bool = False):
        from pocketstack.common import pagination

        conds = []
        if not (ctx.is_admin and all_tenants):
            conds.append(V.c.project_id == ctx.project_id)
        meta_filter = None
        for key, value in filters.items():
            if key == "metadata":
                meta_filter = value
            elif key == "name~":
                conds.append(V.c.name.contains(value))
            elif key == "bootable":
                conds.append(V.c.bootable == value)
            elif key == "volume_type":
                conds.append(V.c.volume_type_id == value)
            elif key in ("created_at", "updated_at"):
                conds.extend(value)
            else:
                conds.append(getattr(V.c, key) == value)
        with self.db.reader() as s:
            marker = None
            if marker_id:
                marker = s.execute(sa.select(V).where(V.c.id == marker_id)).first()
                if marker is None or not self._visible(ctx, marker.project_id):
                    raise errors.BadRequest(f"Marker {marker_id} could not be found.")
            count = None
            if with_count:
                count = s.execute(sa.select(sa.func.count()).select_from(V)
                                  .where(*conds)).scalar()
            stmt = pagination.apply(sa.select(V).where(*conds), V.c, sort,
                                    limit=None if meta_filter else limit, marker=marker)
            if offset and not meta_filter:
                stmt = stmt.offset(offset)
            rows = [dict(r._mapping) for r in s.execute(stmt)]
            if meta_filter:
                rows = [r for r in rows
                        if all(r["meta"].get(k) == v for k, v in meta_filter.items())]
                rows = rows[offset:]
                if limit is not None:
                    rows = rows[:limit]
            atts = self.attachments_of(s, [r["id"] for r in rows])
            types = self.types_by_id(s)
            for r in rows:
                r["attachments"] = atts[r["id"]]
                r["volume_type"] = types.get(r["volume_type_id"])
            return rows, count

    def _provisioned(self, backend: str, pool: str) -> float:
        host = f"{self.conf.host}@{backend}#{pool}"
        with self.db.reader() as s:
            return float(s.execute(sa.select(sa.func.coalesce(sa.func.sum(V.c.size), 0))
                                   .where(V.c.host == host)).scalar())

    # -- volumes: create -------------------------------------------------------------------

    @_quota_transaction
    def create_volume(self, ctx: RequestContext, *, size: int | None, name: str | None = None,
                      description: str | None = None, metadata: dict | None = None,
                      volume_type: str | None = None, availability_zone: str | None = None,
                      source_volid: str | None = None, snapshot_id: str | None = None,
                      image_id: str | None = None, backup_id: str | None = None,
                      multiattach: bool = False, scheduler_hints: dict | None = None) -> dict:
        """Validate, check quota, schedule and record the volume; the copy (if any)
        runs on the worker pool. Returns the new row (status ``creating``)."""
        source = None
        image = None
        if image_id:
            image = self.images.describe(ctx, image_id)
            min_gb = max(int(image.get("min_disk") or 0),
                         -(-int(image.get("virtual_size") or image.get("size") or 0) // GiB))
            if size is None:
                size = max(min_gb, 1)
            if size < min_gb:
                raise errors.BadRequest(
                    f"Invalid input received: Size of specified image {min_gb} is larger "
                    f"than volume size {size}.")
        vid = _new_id()
        with self.db.session() as s:
            if snapshot_id:
                snap = s.execute(sa.select(S).where(S.c.id == snapshot_id)).first()
                if snap is None or not self._visible(ctx, snap.project_id):
                    raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.")
                if snap.status != "available":
                    raise errors.BadRequest("Invalid snapshot: Originating snapshot status "
                                            "must be one of 'available' values")
                parent = s.execute(sa.select(V).where(V.c.id == snap.volume_id)).first()
                size = size or snap.size
                if size < snap.size:
                    raise errors.BadRequest(
                        f"Invalid input received: Volume size '{size}'GB cannot be smaller "
                        f"than the snapshot size {snap.size}GB. They must be >= original "
                        "snapshot size.")
                source = ("snapshot", dict(snap._mapping), dict(parent._mapping))
            elif source_volid:
                src = self._volume_row(s, ctx, source_volid)
                if src["status"] not in ("available", "in-use"):
                    raise invalid_volume(f"Volume {source_volid} status must be available or "
                                         f"in-use, but current status is: {src['status']}.")
                size = size or src["size"]
                if size < src["size"]:
                    raise errors.BadRequest(
                        "Invalid input received: Clones of volumes must be >= the size of "
                        f"the source volume ({src['size']}GB).")
                source = ("volume", src, src)
            elif backup_id:
                bk = self._backup_row(s, ctx, backup_id)
                if bk["status"] != "available":
                    raise errors.BadRequest(f"Invalid backup: Backup status must be "
                                            f"available but is {bk['status']}.")
                size = size or bk["size"]
                if size < bk["size"]:
                    raise errors.BadRequest("Invalid input received: Volume size cannot be "
                                            "smaller than the backup size.")
            if size is None:
                raise errors.BadRequest("Invalid input received: size is required.")
            if size <= 0:
                raise errors.BadRequest(f"Invalid input received: Volume size '{size}' must "
                                        "be an integer and greater than 0.")
            limit = self.conf.per_volume_size_limit
            if limit >= 0 and size > limit:
                raise errors.BadRequest(f"Invalid input received: Volume size {size}GB "
                                        f"exceeds the per-volume limit of {limit}GB.")
            if volume_type:
                vtype = self.get_type(ctx, volume_type, s)
            elif source is not None and source[2].get("volume_type_id"):
                vtype = self.get_type(RequestContext.internal_admin(),
                                      source[2]["volume_type_id"], s)
            else:
                vtype = self.default_type(s)
            specs = vtype["extra_specs"] if vtype else {}
            if str(specs.get("multiattach", "")).lower() in ("<is> true", "true"):
                multiattach = True
            zones = self.scheduler.zones() or {self.default_zone}
            zone = availability_zone
            if source is not None and source[2].get("availability_zone"):
                if zone and zone != source[2]["availability_zone"]:
                    raise errors.BadRequest("Invalid input received: Availability zone must "
                                            "match the source's.")
                zone = source[2]["availability_zone"]
            if zone and zone not in zones:
                if self.conf.allow_availability_zone_fallback:
                    zone = self.default_zone
                else:
                    raise errors.BadRequest(f"Invalid input received: Availability zone "
                                            f"'{zone}' is invalid.")
            type_name = vtype["name"] if vtype else None
            deltas = {"volumes": 1, "gigabytes": size}
            if type_name:
                deltas.update({f"volumes_{type_name}": 1, f"gigabytes_{type_name}": size})
            self.check_quota(s, ctx.project_id, deltas)
            status, error = "creating", None
            host = backend = None
            try:
                if source is not None:
                    loc = source[1]["provider_location"] if source[0] == "snapshot" \
                        else source[2]["provider_location"]
                    parent_host = source[2]["host"]
                    backend = source[2]["backend"]
                    pool = (loc or {}).get("pool") or parent_host.partition("#")[2]
                    if backend not in self.backends:
                        raise NoValidBackend(f"No valid backend was found. backend {backend} "
                                             "of the source is not running")
                else:
                    choice = self.scheduler.choose(size, specs, zone)
                    backend, pool = choice.backend, choice.pool
                be = self.backends[backend]
                host = f"{be.host}#{pool}"
                zone = zone or be.availability_zone
            except NoValidBackend as exc:
                status, error = "error", str(exc)
            now = utcnow()
            row = {"id": vid, "project_id": ctx.project_id, "user_id": ctx.user_id,
                   "name": name, "description": description, "size": size, "status": status,
                   "attach_status": "detached", "availability_zone": zone or self.default_zone,
                   "host": host, "backend": backend,
                   "volume_type_id": vtype["id"] if vtype else None,
                   "source_volid": source_volid, "snapshot_id": snapshot_id,
                   "backup_id": backup_id, "bootable": False, "multiattach": multiattach,
                   "migration_status": None,
                   "readonly": False, "meta": metadata or {}, "image_meta": None,
                   "provider_location": None, "task": "create", "created_at": now,
                   "updated_at": now}
            if image is not None:
                row["image_meta"] = self.images.volume_image_metadata(image)
                row["bootable"] = True
            if source is not None and source[0] == "volume":
                row["bootable"] = source[2]["bootable"]
                row["image_meta"] = source[2]["image_meta"]
            if source is not None and source[0] == "snapshot":
                row["bootable"] = source[2]["bootable"]
                row["image_meta"] = source[2]["image_meta"]
            s.execute(V.insert().values(**row))
        if error:
            self.add_message(ctx.project_id, "VOLUME", vid, f"schedule allocate volume: {error}",
                             ctx.request_id)
        else:
            self._submit(self._do_create_volume, ctx, dict(row), source, image, backup_id)
        row["attachments"] = []
        row["volume_type"] = vtype
        return row

    def _set_volume(self, volume_id: str, **values) -> None:
        values["updated_at"] = utcnow()
        with self.db.session() as s:
            s.execute(V.update().where(V.c.id == volume_id).values(**values))

    def _fail_volume(self, ctx, vol_id: str, project_id: str, action: str, exc: Exception,
                     status: str = "error") -> None:
        LOG.warning("volume %s: %s failed: %s", vol_id, action, exc)
        # The message first: whoever sees the failed status can read why.
        self.add_message(project_id, "VOLUME", vol_id, f"{action}: {exc}",
                         getattr(ctx, "request_id", None))
        self._set_volume(vol_id, status=status)

    def _do_create_volume(self, ctx, vol: dict, source, image, backup_id) -> None:
        volume_id = vol["id"]
        be = self.backend(vol["backend"])
        pool = vol["host"].partition("#")[2]
        driver = be.driver
        try:
            if source is not None and source[0] == "snapshot":
                with self.db.reader() as s:
                    snap = s.execute(sa.select(S).where(S.c.id == source[1]["id"])).first()
                src_ref, fmt = driver.source(snap.provider_location)
                loc = driver.create_from_source(volume_id, vol["size"], pool, src_ref, fmt)
            elif source is not None:
                with self.volume_lock(source[1]["id"]):
                    with self.db.reader() as s:
                        src = s.execute(sa.select(V).where(V.c.id == source[1]["id"])).first()
                    src_ref, fmt = driver.source(src.provider_location)
                    loc = driver.create_from_source(volume_id, vol["size"], pool, src_ref, fmt)
            elif image is not None:
                self._set_volume(volume_id, status="downloading")
                with self.images.local_copy(ctx, image) as (path, fmt):
                    loc = driver.create_from_source(volume_id, vol["size"], pool, path, fmt)
            elif backup_id:
                loc = driver.create_volume(volume_id, vol["size"], pool)
                self._set_volume(volume_id, provider_location=loc, status="restoring-backup")
                self.backup_store.restore_into(backup_id, driver, loc)
            else:
                loc = driver.create_volume(volume_id, vol["size"], pool)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the volume in error
            self._cleanup_failed(be, pool, volume_id)
            self._fail_volume(ctx, volume_id, vol["project_id"], "create volume",
                              exc if isinstance(exc, (DriverError, errors.ApiError))
                              else DriverError(str(exc) or type(exc).__name__))
            return
        self._created.put((be, pool, volume_id, loc, vol["project_id"]))

    def _commit_created_loop(self) -> None:
        """Mark created volumes available, many to a transaction (group commit):
        under a burst of creates one commit serves many volumes."""
        import queue

        while True:
            item = self._created.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 256:
                try:
                    nxt = self._created.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._created.put(None)
                    break
                batch.append(nxt)
            lost = []
            try:
                with self.db.session() as s:
                    now = utcnow()
                    for be, pool, volume_id, loc, _project in batch:
                        done = s.execute(V.update().where(
                            V.c.id == volume_id, V.c.status.in_(["creating", "downloading",
                                                                 "restoring-backup"]))
                            .values(status="available", provider_location=loc, task=None,
                                    updated_at=now))
                        if done.rowcount == 0:
                            lost.append((be, pool, volume_id))
            except Exception:  # noqa: BLE001
                LOG.exception("marking %d volumes available", len(batch))
                for be, pool, volume_id, _loc, project in batch:
                    self._cleanup_failed(be, pool, volume_id)
                    self._fail_volume(None, volume_id, project, "create volume",
                                      DriverError("could not record the new volume"))
                continue
            for be, pool, volume_id in lost:
                # deleted (forced) while being created: remove what was made
                self._submit(self._cleanup_failed, be, pool, volume_id)

    def _cleanup_failed(self, be: Backend, pool: str, volume_id: str) -> None:
        """Remove what a failed create left; if the share is unreachable, the
        janitor retries until it answers again."""
        try:
            be.driver.delete_volume(volume_id, None, pool)
        except Exception as exc:  # noqa: BLE001
            LOG.warning("cleanup of volume %s deferred: %s", volume_id, exc)
            self._defer_cleanup(be.name, pool, volume_id, str(exc))

    def _defer_cleanup(self, backend: str, pool: str, volume_id: str, reason: str) -> None:
        with self.db.session() as s:
            s.execute(models.cleanup.insert().values(
                backend=backend, location={"pool": pool, "volume_id": volume_id},
                reason=reason[:255], created_at=utcnow()))

    def _janitor_loop(self) -> None:
        """Retry deferred cleanups; refresh the backends' capacity for the scheduler."""
        interval = self.conf.volume_cleanup_interval
        last_stats = time.monotonic()
        while not self._stop.wait(interval):
            try:
                self.run_cleanup()
            except Exception:  # noqa: BLE001
                LOG.exception("volume cleanup")
            if time.monotonic() - last_stats >= self.conf.backend_stats_polling_interval \
                    or self.scheduler.any_down():
                last_stats = time.monotonic()
                try:
                    self.scheduler.refresh()
                except Exception:  # noqa: BLE001
                    LOG.exception("volume backend stats")

    def run_cleanup(self) -> int:
        with self.db.reader() as s:
            rows = s.execute(sa.select(models.cleanup)).all()
        done = 0
        for row in rows:
            be = self.backends.get(row.backend)
            if be is None:
                continue
            try:
                be.driver.delete_volume(row.location["volume_id"], None, row.location["pool"])
            except Exception as exc:  # noqa: BLE001
                LOG.debug("cleanup of %s still failing: %s", row.location, exc)
                continue
            with self.db.session() as s:
                s.execute(models.cleanup.delete().where(models.cleanup.c.id == row.id))
            done += 1
        return done

    # -- volumes: update, delete -----------------------------------------------------------

    def update_volume(self, ctx: RequestContext, volume_id: str, values: dict) -> dict:
        with self.db.session() as s:
            self._volume_row(s, ctx, volume_id, lock=True)
            if values:
                s.execute(V.update().where(V.c.id == volume_id).values(
                    **values, updated_at=utcnow()))
        return self.get_volume(ctx, volume_id)

    def set_metadata(self, ctx: RequestContext, volume_id: str, meta: dict,
                     replace: bool = False) -> dict:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            new = dict(meta) if replace else {**vol["meta"], **meta}
            s.execute(V.update().where(V.c.id == volume_id).values(meta=new,
                                                                    updated_at=utcnow()))
            return new

    def delete_metadata_key(self, ctx: RequestContext, volume_id: str, key: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if key not in vol["meta"]:
                raise errors.NotFound(f"Metadata item was not found: {key}")
            new = {k: v for k, v in vol["meta"].items() if k != key}
            s.execute(V.update().where(V.c.id == volume_id).values(meta=new))

    def delete_volume(self, ctx: RequestContext, volume_id: str, cascade: bool = False,
                      force: bool = False) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if force and not ctx.is_admin:
                raise errors.Forbidden("Policy doesn't allow volume:force_delete to be "
                                       "performed.")
            attached = s.execute(sa.select(A.c.id).where(A.c.volume_id == volume_id)).first()
            snaps = s.execute(sa.select(S).where(S.c.volume_id == volume_id)).all()
            if not force:
                if vol["status"] not in DELETABLE or attached or vol["migration_status"] \
                        not in (None, "success", "error"):
                    raise invalid_volume(
                        "Volume status must be available or error or error_restoring or "
                        "error_extending or error_managing and must not be migrating, "
                        "attached, belong to a group, have snapshots or be disassociated "
                        "from snapshots after volume transfer.")
                if snaps and not cascade:
                    raise errors.BadRequest(f"Invalid volume: Volume still has {len(snaps)} "
                                            "dependent snapshots.")
                if cascade and any(sn.status not in ("available", "error") for sn in snaps):
                    raise errors.BadRequest("Invalid volume: Snapshot of volume is not in a "
                                            "state that can be deleted.")
            else:
                s.execute(A.delete().where(A.c.volume_id == volume_id))
            s.execute(S.update().where(S.c.volume_id == volume_id).values(status="deleting"))
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="deleting", updated_at=utcnow()))
        self._submit(self._do_delete_volume, volume_id)

    def _do_delete_volume(self, volume_id: str) -> None:
        with self.db.reader() as s:
            row = s.execute(sa.select(V).where(V.c.id == volume_id)).first()
        if row is None:
            return
        vol = dict(row._mapping)
        if vol["backend"] and vol["host"]:
            be = self.backends.get(vol["backend"])
            pool = vol["host"].partition("#")[2]
            try:
                if be is None:
                    raise DriverError(f"backend {vol['backend']} is not running")
                with self.volume_lock(volume_id):
                    be.driver.delete_volume(volume_id, vol["provider_location"], pool)
            except Exception as exc:  # noqa: BLE001
                self._fail_volume(None, volume_id, vol["project_id"], "delete volume", exc,
                                  status="error_deleting")
                return
        with self.db.session() as s:
            s.execute(S.delete().where(S.c.volume_id == volume_id))
            s.execute(A.delete().where(A.c.volume_id == volume_id))
            s.execute(V.delete().where(V.c.id == volume_id))
        with self._locks_lock:
            self._volume_locks.pop(volume_id, None)

    # -- volume actions ------------------------------------------------------------------------

    @_quota_transaction
    def extend_volume(self, ctx: RequestContext, volume_id: str, new_size: int,
                      allow_in_use: bool = False) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            allowed = ("available", "in-use") if allow_in_use else ("available",)
            if vol["status"] not in allowed:
                raise invalid_volume(f"Volume {volume_id} status must be "
                                     f"{' or '.join(allowed)} to extend, but current "
                                     f"status is: {vol['status']}.")
            if new_size <= vol["size"]:
                raise errors.BadRequest(
                    "Invalid input received: New size for extend must be greater than "
                    f"current size. (current: {vol['size']}, extended: {new_size}).")
            limit = self.conf.per_volume_size_limit
            if limit >= 0 and new_size > limit:
                raise errors.BadRequest(f"Invalid input received: Volume size {new_size}GB "
                                        f"exceeds the per-volume limit of {limit}GB.")
            delta = new_size - vol["size"]
            deltas = {"gigabytes": delta}
            vtype = self.types_by_id(s).get(vol["volume_type_id"])
            if vtype:
                deltas[f"gigabytes_{vtype['name']}"] = delta
            self.check_quota(s, vol["project_id"], deltas)
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="extending", updated_at=utcnow()))
        self._submit(self._do_extend, ctx, volume_id, vol["status"], new_size)

    def _do_extend(self, ctx, volume_id: str, previous: str, new_size: int) -> None:
        with self.db.reader() as s:
            vol = dict(s.execute(sa.select(V).where(V.c.id == volume_id)).first()._mapping)
        try:
            with self.volume_lock(volume_id):
                self.backend(vol["backend"]).driver.extend_volume(vol["provider_location"],
                                                                  new_size)
        except Exception as exc:  # noqa: BLE001
            self._fail_volume(ctx, volume_id, vol["project_id"], "extend volume", exc,
                              status="error_extending")
            return
        self._set_volume(volume_id, status=previous, size=new_size)

    def reset_status(self, ctx: RequestContext, volume_id: str, status: str | None,
                     attach_status: str | None, migration_status: str | None) -> None:
        values = {}
        if status:
            values["status"] = status
        if attach_status:
            values["attach_status"] = attach_status
        if migration_status:
            values["migration_status"] = None if migration_status == "none" \
                else migration_status
        with self.db.session() as s:
            self._volume_row(s, ctx, volume_id, lock=True)
            if attach_status == "detached":
                s.execute(A.delete().where(A.c.volume_id == volume_id))
            s.execute(V.update().where(V.c.id == volume_id).values(**values,
                                                                    updated_at=utcnow()))

    def set_bootable(self, ctx: RequestContext, volume_id: str, bootable: bool) -> None:
        self.update_volume(ctx, volume_id, {"bootable": bootable})

    def set_readonly(self, ctx: RequestContext, volume_id: str, readonly: bool) -> None:
        self.update_volume(ctx, volume_id, {"readonly": readonly})

    def set_image_metadata(self, ctx: RequestContext, volume_id: str, meta: dict) -> dict:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            new = {**(vol["image_meta"] or {}), **meta}
            s.execute(V.update().where(V.c.id == volume_id).values(image_meta=new))
            return new

    def unset_image_metadata(self, ctx: RequestContext, volume_id: str, key: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            meta = dict(vol["image_meta"] or {})
            if key not in meta:
                raise errors.NotFound(f"Glance metadata for volume {volume_id} and key {key} "
                                      "could not be found.")
            del meta[key]
            s.execute(V.update().where(V.c.id == volume_id).values(image_meta=meta))

    @_quota_transaction
    def retype(self, ctx: RequestContext, volume_id: str, new_type: str, policy: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            vtype = self.get_type(ctx, new_type, s)
            if vol["status"] not in ("available", "in-use"):
                raise invalid_volume(f"Volume {volume_id} status must be available or in-use "
                                     f"to retype, but is {vol['status']}.")
            if vtype["id"] == vol["volume_type_id"]:
                raise errors.BadRequest("Invalid volume type: New volume type must be "
                                        "different from the current one.")
            wanted = vtype["extra_specs"].get("volume_backend_name")
            be = self.backends.get(vol["backend"] or "")
            if be is None or not wanted or wanted == be.backend_name:
                old = self.types_by_id(s).get(vol["volume_type_id"])
                if old is not None:
                    self.check_quota(s, vol["project_id"], {
                        f"volumes_{vtype['name']}": 1,
                        f"gigabytes_{vtype['name']}": vol["size"]})
                s.execute(V.update().where(V.c.id == volume_id).values(
                    volume_type_id=vtype["id"], updated_at=utcnow()))
                return
            if policy != "on-demand":
                raise errors.BadRequest("Invalid volume: Retype requires migration but is "
                                        "not allowed (migration_policy is never).")
            if vol["status"] != "available":
                raise invalid_volume("Volume must be available to migrate between backends.")
            if s.execute(sa.select(S.c.id).where(S.c.volume_id == volume_id)).first():
                raise invalid_volume("Volume must not have snapshots to migrate.")
            try:
                target = self.scheduler.choose(vol["size"], vtype["extra_specs"],
                                               vol["availability_zone"])
            except NoValidBackend as exc:
                raise errors.BadRequest(f"Invalid volume type: {exc}") from None
            tbe = self.backends[target.backend]
            if tbe.driver.protocol != be.driver.protocol:
                raise errors.BadRequest("Invalid volume type: retype moves volumes only "
                                        "between backends of the same driver.")
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="retyping", migration_status="migrating", updated_at=utcnow()))
        self._submit(self._do_migrate, ctx, volume_id, vtype["id"], target.backend, target.pool)

    def _do_migrate(self, ctx, volume_id: str, type_id: str, backend: str, pool: str) -> None:
        with self.db.reader() as s:
            vol = dict(s.execute(sa.select(V).where(V.c.id == volume_id)).first()._mapping)
        old = self.backend(vol["backend"])
        new = self.backend(backend)
        old_pool = vol["host"].partition("#")[2]
        try:
            with self.volume_lock(volume_id):
                ref, fmt = old.driver.source(vol["provider_location"])
                loc = new.driver.create_from_source(volume_id, vol["size"], pool, ref, fmt)
        except Exception as exc:  # noqa: BLE001
            self._cleanup_failed(new, pool, volume_id)
            self._set_volume(volume_id, migration_status="error")
            self._fail_volume(ctx, volume_id, vol["project_id"], "retype volume", exc,
                              status="available")
            return
        self._set_volume(volume_id, status="available", migration_status="success",
                         volume_type_id=type_id, backend=backend, host=f"{new.host}#{pool}",
                         provider_location=loc)
        self._cleanup_failed(old, old_pool, volume_id)

    def upload_to_image(self, ctx: RequestContext, volume_id: str, params: dict) -> dict:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            ok = ("available", "in-use") if params.get("force") else ("available",)
            if vol["status"] not in ok:
                raise invalid_volume(f"Volume {volume_id} status must be available or "
                                     f"in-use, but current status is: {vol['status']}.")
            image = self.images.create_for_upload(ctx, vol, params)
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="uploading", updated_at=utcnow()))
        self._submit(self._do_upload, ctx, volume_id, vol["status"], image, params)
        vol["image_id"] = image["id"]
        return {"vol": vol, "image": image}

    def _do_upload(self, ctx, volume_id: str, previous: str, image: dict, params: dict) -> None:
        with self.db.reader() as s:
            vol = dict(s.execute(sa.select(V).where(V.c.id == volume_id)).first()._mapping)
        try:
            with self.volume_lock(volume_id):
                driver = self.backend(vol["backend"]).driver
                self.images.upload(ctx, image, driver, vol["provider_location"],
                                   params.get("disk_format") or "raw")
        except Exception as exc:  # noqa: BLE001
            LOG.warning("upload of volume %s failed: %r", volume_id, exc, exc_info=True)
            self.images.abandon(ctx, image)
            self.add_message(vol["project_id"], "VOLUME", volume_id,
                             f"upload volume to image: {exc}", getattr(ctx, "request_id", None))
        self._set_volume(volume_id, status=previous)

    # -- attachments (the compute interface) -------------------------------------------------

    def _attachment_row(self, s, ctx: RequestContext, attachment_id: str) -> dict:
        row = s.execute(sa.select(A).where(A.c.id == attachment_id)).first()
        if row is None or not self._visible(ctx, row.project_id):
            raise errors.NotFound(f"VolumeAttachment {attachment_id} could not be found.")
        return dict(row._mapping)

    def attachment_create(self, ctx: RequestContext, volume_id: str,
                          instance_uuid: str | None, connector: dict | None = None,
                          mode: str = "rw", mountpoint: str | None = None) -> dict:
        """Reserve the volume for an instance (Nova: attachment_create)."""
        now = utcnow()
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            existing = s.execute(sa.select(A).where(A.c.volume_id == volume_id)).all()
            if vol["status"] == "available" or (
                    vol["multiattach"] and vol["status"] in ("in-use", "reserved")):
                pass
            elif vol["status"] == "reserved" and not existing:
                pass
            else:
                raise invalid_volume(
                    f"Volume {volume_id} status must be available or in-use with "
                    f"multiattach, but current status is: {vol['status']}.")
            if instance_uuid and any(a.instance_uuid == instance_uuid for a in existing):
                raise invalid_volume(f"Volume {volume_id} is already attached to "
                                     f"server {instance_uuid}.")
            if vol["readonly"]:
                mode = "ro"
            att = {"id": _new_id(), "volume_id": volume_id, "project_id": vol["project_id"],
                   "instance_uuid": instance_uuid, "attached_host": None,
                   "mountpoint": mountpoint, "attach_status": "reserved", "attach_mode": mode,
                   "connector": None, "connection_info": None, "attach_time": None,
                   "detach_time": None, "created_at": now, "updated_at": now}
            s.execute(A.insert().values(**att))
            if vol["status"] == "available":
                s.execute(V.update().where(V.c.id == volume_id).values(
                    status="reserved", updated_at=now))
        if connector:
            return self.attachment_update(ctx, att["id"], connector, mountpoint)
        return att

    def attachment_update(self, ctx: RequestContext, attachment_id: str, connector: dict,
                          mountpoint: str | None = None) -> dict:
        """Hand the host's connector over; returns the attachment with its
        connection_info (how to reach the volume: a path or an nfs:// URL)."""
        with self.db.session() as s:
            att = self._attachment_row(s, ctx, attachment_id)
            vol = dict(s.execute(sa.select(V).where(V.c.id == att["volume_id"])
                                 .with_for_update()).first()._mapping)
            if vol["provider_location"] is None:
                raise invalid_volume(f"Volume {vol['id']} has no data to attach "
                                     f"(status {vol['status']}).")
            driver = self.backend(vol["backend"]).driver
            info = driver.connection_info(vol["id"], vol["provider_location"], connector,
                                          att["attach_mode"])
            info["data"]["attachment_id"] = attachment_id
            info["data"]["device_path"] = info["data"].get("path") or info["data"].get("url")
            values = {"connector": connector, "connection_info": info,
                      "attach_status": "attaching", "updated_at": utcnow(),
                      "attached_host": (connector or {}).get("host"),
                      "mountpoint": mountpoint or (connector or {}).get("mountpoint")
                      or att["mountpoint"]}
            s.execute(A.update().where(A.c.id == attachment_id).values(**values))
            if vol["status"] in ("reserved", "available"):
                s.execute(V.update().where(V.c.id == vol["id"]).values(
                    status="attaching", updated_at=utcnow()))
            return {**att, **values}

    def attachment_complete(self, ctx: RequestContext, attachment_id: str) -> None:
        now = utcnow()
        with self.db.session() as s:
            att = self._attachment_row(s, ctx, attachment_id)
            s.execute(A.update().where(A.c.id == attachment_id).values(
                attach_status="attached", attach_time=now, updated_at=now))
            s.execute(V.update().where(V.c.id == att["volume_id"]).values(
                status="in-use", attach_status="attached", updated_at=now))

    def attachment_delete(self, ctx: RequestContext, attachment_id: str) -> None:
        with self.db.session() as s:
            att = self._attachment_row(s, ctx, attachment_id)
            self._volume_row(s, RequestContext.internal_admin(), att["volume_id"], lock=True)
            s.execute(A.delete().where(A.c.id == attachment_id))
            left = s.execute(sa.select(A.c.attach_status).where(
                A.c.volume_id == att["volume_id"])).scalars().all()
            if not left:
                status, attach = "available", "detached"
            elif "attached" in left:
                status, attach = "in-use", "attached"
            else:
                status, attach = "reserved", "detached"
            s.execute(V.update().where(V.c.id == att["volume_id"]).values(
                status=status, attach_status=attach, updated_at=utcnow()))

    def get_attachment(self, ctx: RequestContext, attachment_id: str) -> dict:
        with self.db.reader() as s:
            return self._attachment_row(s, ctx, attachment_id)

    def list_attachments(self, ctx: RequestContext, all_tenants: bool = False,
                         volume_id: str | None = None, instance_id: str | None = None,
                         status: str | None = None) -> list[dict]:
        q = sa.select(A).order_by(A.c.created_at)
        if not (ctx.is_admin and all_tenants):
            q = q.where(A.c.project_id == ctx.project_id)
        if volume_id:
            q = q.where(A.c.volume_id == volume_id)
        if instance_id:
            q = q.where(A.c.instance_uuid == instance_id)
        if status:
            q = q.where(A.c.attach_status == status)
        with self.db.reader() as s:
            return [dict(r._mapping) for r in s.execute(q)]

    # legacy actions (os-reserve, os-attach, os-detach, ...)

    def reserve(self, ctx: RequestContext, volume_id: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] == "available" or (vol["multiattach"] and
                                                vol["status"] == "in-use"):
                s.execute(V.update().where(V.c.id == volume_id).values(
                    status="attaching", updated_at=utcnow()))
                return
            raise invalid_volume(f"Volume {volume_id} status must be available or in-use "
                                 f"with multiattach, but current status is: {vol['status']}.")

    def unreserve(self, ctx: RequestContext, volume_id: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] == "attaching":
                left = s.execute(sa.select(A.c.id).where(A.c.volume_id == volume_id)).first()
                s.execute(V.update().where(V.c.id == volume_id).values(
                    status="in-use" if left else "available"))

    def legacy_attach(self, ctx: RequestContext, volume_id: str, instance_uuid: str | None,
                      host_name: str | None, mountpoint: str | None, mode: str) -> None:
        now = utcnow()
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] not in ("available", "attaching") and not (
                    vol["multiattach"] and vol["status"] == "in-use"):
                raise invalid_volume(f"Volume {volume_id} status must be available or "
                                     f"attaching, but current status is: {vol['status']}.")
            if vol["readonly"] and mode == "rw":
                raise errors.BadRequest("Invalid volume: Volume is read-only; attach it "
                                        "with mode ro.")
            s.execute(A.insert().values(
                id=_new_id(), volume_id=volume_id, project_id=vol["project_id"],
                instance_uuid=instance_uuid, attached_host=host_name, mountpoint=mountpoint,
                attach_status="attached", attach_mode=mode, attach_time=now, created_at=now,
                updated_at=now))
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="in-use", attach_status="attached", updated_at=now))

    def legacy_detach(self, ctx: RequestContext, volume_id: str,
                      attachment_id: str | None) -> None:
        with self.db.reader() as s:
            self._volume_row(s, ctx, volume_id)
            q = sa.select(A.c.id).where(A.c.volume_id == volume_id)
            if attachment_id:
                q = q.where(A.c.id == attachment_id)
            ids = s.execute(q).scalars().all()
        if not ids:
            raise invalid_volume(f"Volume {volume_id} is not attached.")
        if len(ids) > 1 and not attachment_id:
            raise invalid_volume("Volume has several attachments: name the attachment_id.")
        self.attachment_delete(ctx, ids[0])

    def begin_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] != "in-use":
                raise invalid_volume(f"Volume {volume_id} status must be in-use to detach, "
                                     f"but current status is: {vol['status']}.")
            s.execute(V.update().where(V.c.id == volume_id).values(status="detaching"))

    def roll_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] == "detaching":
                s.execute(V.update().where(V.c.id == volume_id).values(status="in-use"))

    def initialize_connection(self, ctx: RequestContext, volume_id: str,
                              connector: dict) -> dict:
        with self.db.reader() as s:
            vol = self._volume_row(s, ctx, volume_id)
        if vol["provider_location"] is None:
            raise invalid_volume(f"Volume {volume_id} has no data to connect to.")
        driver = self.backend(vol["backend"]).driver
        return driver.connection_info(volume_id, vol["provider_location"], connector,
                                      "ro" if vol["readonly"] else "rw")

    # -- snapshots --------------------------------------------------------------------------------

    def _snapshot_row(self, s, ctx: RequestContext, snapshot_id: str, lock: bool = False):
        q = sa.select(S).where(S.c.id == snapshot_id)
        if lock:
            q = q.with_for_update()
        row = s.execute(q).first()
        if row is None or not self._visible(ctx, row.project_id):
            raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.")
        return dict(row._mapping)

    def get_snapshot(self, ctx: RequestContext, snapshot_id: str) -> dict:
        with self.db.reader() as s:
            return self._snapshot_row(s, ctx, snapshot_id)

    def list_snapshots(self, ctx: RequestContext, filters: dict, all_tenants: bool, sort,
                       limit, marker_id, offset: int = 0, with_count: bool = False):
        from pocketstack.common import pagination

        conds = []
        if not (ctx.is_admin and all_tenants):
            conds.append(S.c.project_id == ctx.project_id)
        meta_filter = filters.pop("metadata", None)
        for key, value in filters.items():
            if key == "name~":
                conds.append(S.c.name.contains(value))
            else:
                conds.append(getattr(S.c, key) == value)
        with self.db.reader() as s:
            marker = None
            if marker_id:
                marker = s.execute(sa.select(S).where(S.c.id == marker_id)).first()
                if marker is None:
                    raise errors.BadRequest(f"Marker {marker_id} could not be found.")
            count = s.execute(sa.select(sa.func.count()).select_from(S).where(*conds)) \
                .scalar() if with_count else None
            stmt = pagination.apply(sa.select(S).where(*conds), S.c, sort,
                                    limit=None if meta_filter else limit, marker=marker)
            if offset and not meta_filter:
                stmt = stmt.offset(offset)
            rows = [dict(r._mapping) for r in s.execute(stmt)]
        if meta_filter:
            rows = [r for r in rows if all(r["meta"].get(k) == v for k, v in
                                           meta_filter.items())][offset:]
            rows = rows[:limit] if limit is not None else rows
        return rows, count

    @_quota_transaction
    def create_snapshot(self, ctx: RequestContext, volume_id: str, name: str | None,
                        description: str | None, force: bool, metadata: dict | None,
                        allow_in_use: bool = False) -> dict:
        now = utcnow()
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] == "in-use" and not (force or allow_in_use):
                raise invalid_volume(f"Volume {volume_id} status must be available, but "
                                     f"current status is: in-use.")
            if vol["status"] not in ("available", "in-use"):
                raise invalid_volume(f"Volume {volume_id} status must be available or in-use, "
                                     f"but current status is: {vol['status']}.")
            be = self.backends.get(vol["backend"] or "")
            if be is not None and not be.driver.snapshots_supported:
                raise errors.BadRequest(f"Invalid volume: backend {be.name} does not support "
                                        "snapshots.")
            vtype = self.types_by_id(s).get(vol["volume_type_id"])
            deltas = {"snapshots": 1, "gigabytes": vol["size"]}
            if vtype:
                deltas.update({f"snapshots_{vtype['name']}": 1,
                               f"gigabytes_{vtype['name']}": vol["size"]})
            self.check_quota(s, vol["project_id"], deltas)
            row = {"id": _new_id(), "volume_id": volume_id, "project_id": vol["project_id"],
                   "user_id": ctx.user_id, "name": name, "description": description,
                   "size": vol["size"], "status": "creating", "progress": "0%",
                   "volume_type_id": vol["volume_type_id"], "meta": metadata or {},
                   "provider_location": None, "created_at": now, "updated_at": now}
            s.execute(S.insert().values(**row))
        self._submit(self._do_create_snapshot, ctx, row["id"])
        return row

    def _do_create_snapshot(self, ctx, snapshot_id: str) -> None:
        with self.db.reader() as s:
            snap = dict(s.execute(sa.select(S).where(S.c.id == snapshot_id)).first()._mapping)
        try:
            with self.volume_lock(snap["volume_id"]):
                with self.db.reader() as s:
                    vol = dict(s.execute(sa.select(V).where(V.c.id == snap["volume_id"]))
                               .first()._mapping)
                driver = self.backend(vol["backend"]).driver
                vol_loc, snap_loc = driver.create_snapshot(vol["id"], vol["provider_location"],
                                                           snapshot_id, vol["size"])
                with self.db.session() as s:
                    s.execute(V.update().where(V.c.id == vol["id"]).values(
                        provider_location=vol_loc))
                    s.execute(S.update().where(S.c.id == snapshot_id).values(
                        provider_location=snap_loc, status="available", progress="100%",
                        updated_at=utcnow()))
        except Exception as exc:  # noqa: BLE001
            LOG.warning("snapshot %s failed: %s", snapshot_id, exc)
            self.add_message(snap["project_id"], "SNAPSHOT", snapshot_id,
                             f"create snapshot: {exc}", getattr(ctx, "request_id", None))
            with self.db.session() as s:
                s.execute(S.update().where(S.c.id == snapshot_id).values(
                    status="error", updated_at=utcnow()))

    def update_snapshot(self, ctx: RequestContext, snapshot_id: str, values: dict) -> dict:
        with self.db.session() as s:
            self._snapshot_row(s, ctx, snapshot_id, lock=True)
            if values:
                s.execute(S.update().where(S.c.id == snapshot_id).values(
                    **values, updated_at=utcnow()))
            return self._snapshot_row(s, ctx, snapshot_id)

    def set_snapshot_metadata(self, ctx, snapshot_id: str, meta: dict, replace: bool) -> dict:
        with self.db.session() as s:
            snap = self._snapshot_row(s, ctx, snapshot_id, lock=True)
            new = dict(meta) if replace else {**snap["meta"], **meta}
            s.execute(S.update().where(S.c.id == snapshot_id).values(meta=new))
            return new

    def delete_snapshot_metadata_key(self, ctx, snapshot_id: str, key: str) -> None:
        with self.db.session() as s:
            snap = self._snapshot_row(s, ctx, snapshot_id, lock=True)
            if key not in snap["meta"]:
                raise errors.NotFound(f"Metadata item was not found: {key}")
            s.execute(S.update().where(S.c.id == snapshot_id).values(
                meta={k: v for k, v in snap["meta"].items() if k != key}))

    def reset_snapshot_status(self, ctx, snapshot_id: str, status: str) -> None:
        self.update_snapshot(ctx, snapshot_id, {"status": status})

    def delete_snapshot(self, ctx: RequestContext, snapshot_id: str,
                        force: bool = False) -> None:
        with self.db.session() as s:
            snap = self._snapshot_row(s, ctx, snapshot_id, lock=True)
            if not force and snap["status"] not in ("available", "error"):
                raise errors.BadRequest("Invalid snapshot: Volume Snapshot status must be "
                                        "available or error or error_deleting or deleting.")
            s.execute(S.update().where(S.c.id == snapshot_id).values(
                status="deleting", updated_at=utcnow()))
        self._submit(self._do_delete_snapshot, snapshot_id)

    def _do_delete_snapshot(self, snapshot_id: str) -> None:
        with self.db.reader() as s:
            row = s.execute(sa.select(S).where(S.c.id == snapshot_id)).first()
        if row is None:
            return
        snap = dict(row._mapping)
        try:
            with self.volume_lock(snap["volume_id"]):
                with self.db.reader() as s:
                    vol = dict(s.execute(sa.select(V).where(V.c.id == snap["volume_id"]))
                               .first()._mapping)
                    others = {r.id: r.provider_location for r in s.execute(
                        sa.select(S).where(S.c.volume_id == vol["id"], S.c.id != snapshot_id))}
                if snap["provider_location"] and vol["provider_location"]:
                    driver = self.backend(vol["backend"]).driver
                    vol_loc, changed = driver.delete_snapshot(
                        vol["provider_location"], snap["provider_location"], others)
                else:
                    vol_loc, changed = vol["provider_location"], {}
                with self.db.session() as s:
                    s.execute(V.update().where(V.c.id == vol["id"]).values(
                        provider_location=vol_loc))
                    for sid, loc in changed.items():
                        s.execute(S.update().where(S.c.id == sid).values(provider_location=loc))
                    s.execute(S.delete().where(S.c.id == snapshot_id))
        except Exception as exc:  # noqa: BLE001
            LOG.warning("deleting snapshot %s failed: %s", snapshot_id, exc)
            self.add_message(snap["project_id"], "SNAPSHOT", snapshot_id,
                             f"delete snapshot: {exc}")
            with self.db.session() as s:
                s.execute(S.update().where(S.c.id == snapshot_id).values(
                    status="error_deleting", updated_at=utcnow()))

    def revert_to_snapshot(self, ctx: RequestContext, volume_id: str, snapshot_id: str) -> None:
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            snap = self._snapshot_row(s, ctx, snapshot_id)
            latest = s.execute(sa.select(S).where(S.c.volume_id == volume_id)
                               .order_by(S.c.created_at.desc())).first()
            if snap["volume_id"] != volume_id or latest is None or latest.id != snapshot_id:
                raise errors.BadRequest("Invalid snapshot: only the volume's latest snapshot "
                                        "can be reverted to.")
            if vol["status"] != "available" or snap["status"] != "available":
                raise invalid_volume("Volume and snapshot must be available to revert.")
            if snap["size"] != vol["size"]:
                raise invalid_volume("Volume was extended since the snapshot.")
            s.execute(V.update().where(V.c.id == volume_id).values(status="reverting"))
        self._submit(self._do_revert, ctx, volume_id, snapshot_id)

    def _do_revert(self, ctx, volume_id: str, snapshot_id: str) -> None:
        from pocketstack.volume import commands

        with self.db.reader() as s:
            vol = dict(s.execute(sa.select(V).where(V.c.id == volume_id)).first()._mapping)
        try:
            with self.volume_lock(volume_id):
                driver = self.backend(vol["backend"]).driver
                loc = vol["provider_location"]
                share = driver.share(loc["pool"])
                active, _ = loc["chain"][-1]
                prev, prev_fmt = loc["chain"][-2]
                share.remove(active)
                commands.qemu_img_create(share.ref(active), "qcow2", vol["size"] * GiB,
                                         backing=share.backing_ref(prev), backing_fmt=prev_fmt,
                                         timeout=driver.op_timeout())
        except Exception as exc:  # noqa: BLE001
            self._fail_volume(ctx, volume_id, vol["project_id"], "revert volume", exc)
            return
        self._set_volume(volume_id, status="available")

    # -- backups ----------------------------------------------------------------------------------

    def _backup_row(self, s, ctx: RequestContext, backup_id: str, lock: bool = False) -> dict:
        q = sa.select(B).where(B.c.id == backup_id)
        if lock:
            q = q.with_for_update()
        row = s.execute(q).first()
        if row is None or not self._visible(ctx, row.project_id):
            raise errors.NotFound(f"Backup {backup_id} could not be found.")
        return dict(row._mapping)

    def get_backup(self, ctx: RequestContext, backup_id: str) -> dict:
        with self.db.reader() as s:
            return self._backup_row(s, ctx, backup_id)

    def list_backups(self, ctx: RequestContext, filters: dict, all_tenants: bool, sort, limit,
                     marker_id, offset: int = 0, with_count: bool = False):
        from pocketstack.common import pagination

        conds = []
        if not (ctx.is_admin and all_tenants):
            conds.append(B.c.project_id == ctx.project_id)
        for key, value in filters.items():
            if key == "name~":
                conds.append(B.c.name.contains(value))
            else:
                conds.append(getattr(B.c, key) == value)
        with self.db.reader() as s:
            marker = None
            if marker_id:
                marker = s.execute(sa.select(B).where(B.c.id == marker_id)).first()
                if marker is None:
                    raise errors.BadRequest(f"Marker {marker_id} could not be found.")
            count = s.execute(sa.select(sa.func.count()).select_from(B).where(*conds)) \
                .scalar() if with_count else None
            stmt = pagination.apply(sa.select(B).where(*conds), B.c, sort, limit=limit,
                                    marker=marker)
            if offset:
                stmt = stmt.offset(offset)
            return [dict(r._mapping) for r in s.execute(stmt)], count

    @_quota_transaction
    def create_backup(self, ctx: RequestContext, volume_id: str, *, name=None,
                      description=None, container=None, incremental=False, force=False,
                      snapshot_id=None, metadata=None) -> dict:
        now = utcnow()
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            ok = ("available", "in-use") if force else ("available",)
            if vol["status"] not in ok:
                raise invalid_volume(f"Volume to be backed up must be available or in-use, "
                                     f"but the current status is \"{vol['status']}\".")
            if snapshot_id:
                snap = self._snapshot_row(s, ctx, snapshot_id)
                if snap["volume_id"] != volume_id or snap["status"] != "available":
                    raise errors.BadRequest("Invalid snapshot: the snapshot must be "
                                            "available and of the volume.")
            parent = None
            if incremental:
                parent = s.execute(sa.select(B).where(
                    B.c.volume_id == volume_id, B.c.status == "available")
                    .order_by(B.c.created_at.desc())).first()
                if parent is None:
                    raise errors.BadRequest("Invalid backup: No backups available to do an "
                                            "incremental backup.")
            self.check_quota(s, vol["project_id"], {"backups": 1,
                                                    "backup_gigabytes": vol["size"]})
            row = {"id": _new_id(), "project_id": vol["project_id"], "user_id": ctx.user_id,
                   "volume_id": volume_id, "snapshot_id": snapshot_id, "name": name,
                   "description": description, "size": vol["size"], "status": "creating",
                   "fail_reason": None,
                   "container": container or self.conf.backup_swift_container,
                   "availability_zone": vol["availability_zone"], "object_count": 0,
                   "is_incremental": bool(incremental), "parent_id": parent.id if parent else None,
                   "meta": metadata or {}, "service_metadata": None, "data_timestamp": now,
                   "created_at": now, "updated_at": now}
            s.execute(B.insert().values(**row))
            s.execute(V.update().where(V.c.id == volume_id).values(
                status="backing-up", updated_at=now))
        self._submit(self._do_backup, ctx, row["id"], vol["status"])
        return row

    def _do_backup(self, ctx, backup_id: str, previous: str) -> None:
        with self.db.reader() as s:
            bk = dict(s.execute(sa.select(B).where(B.c.id == backup_id)).first()._mapping)
            vol = dict(s.execute(sa.select(V).where(V.c.id == bk["volume_id"])).first()._mapping)
            loc = vol["provider_location"]
            if bk["snapshot_id"]:
                loc = s.execute(sa.select(S.c.provider_location).where(
                    S.c.id == bk["snapshot_id"])).scalar()
        values: dict = {}
        try:
            with self.volume_lock(vol["id"]):
                driver = self.backend(vol["backend"]).driver
                values = self.backup_store.backup(ctx, bk, driver, loc)
            values["status"] = "available"
        except Exception as exc:  # noqa: BLE001
            LOG.warning("backup %s failed: %s", backup_id, exc)
            values = {"status": "error", "fail_reason": str(exc)[:255]}
        with self.db.session() as s:
            s.execute(B.update().where(B.c.id == backup_id).values(**values,
                                                                    updated_at=utcnow()))
            s.execute(V.update().where(V.c.id == vol["id"]).values(status=previous,
                                                                    updated_at=utcnow()))

    def update_backup(self, ctx: RequestContext, backup_id: str, values: dict) -> dict:
        with self.db.session() as s:
            self._backup_row(s, ctx, backup_id, lock=True)
            s.execute(B.update().where(B.c.id == backup_id).values(**values,
                                                                    updated_at=utcnow()))
            return self._backup_row(s, ctx, backup_id)

    def delete_backup(self, ctx: RequestContext, backup_id: str, force: bool = False) -> None:
        with self.db.session() as s:
            bk = self._backup_row(s, ctx, backup_id, lock=True)
            if not force and bk["status"] not in ("available", "error"):
                raise errors.BadRequest("Invalid backup: Backup status must be available or "
                                        "error")
            if s.execute(sa.select(B.c.id).where(B.c.parent_id == backup_id)).first():
                raise errors.BadRequest("Invalid backup: Incremental backups exist for this "
                                        "backup.")
            s.execute(B.update().where(B.c.id == backup_id).values(status="deleting"))
        self._submit(self._do_delete_backup, backup_id)

    def _do_delete_backup(self, backup_id: str) -> None:
        with self.db.reader() as s:
            bk = dict(s.execute(sa.select(B).where(B.c.id == backup_id)).first()._mapping)
        try:
            self.backup_store.delete(bk)
        except Exception as exc:  # noqa: BLE001
            LOG.warning("deleting backup %s failed: %s", backup_id, exc)
            with self.db.session() as s:
                s.execute(B.update().where(B.c.id == backup_id).values(
                    status="error_deleting", fail_reason=str(exc)[:255]))
            return
        with self.db.session() as s:
            s.execute(B.delete().where(B.c.id == backup_id))

    def restore_backup(self, ctx: RequestContext, backup_id: str, volume_id: str | None,
                       name: str | None) -> dict:
        with self.db.reader() as s:
            bk = self._backup_row(s, ctx, backup_id)
        if bk["status"] != "available":
            raise errors.BadRequest("Invalid backup: Backup status must be available")
        if volume_id is None:
            vol = self.create_volume(ctx, size=bk["size"], name=name or
                                     f"restore_backup_{backup_id}", backup_id=backup_id)
            return {"backup_id": backup_id, "volume_id": vol["id"], "volume_name": vol["name"]}
        with self.db.session() as s:
            vol = self._volume_row(s, ctx, volume_id, lock=True)
            if vol["status"] != "available":
                raise invalid_volume(f"Volume to be restored to must be available, but the "
                                     f"current status is \"{vol['status']}\".")
            if vol["size"] < bk["size"]:
                raise invalid_volume(f"volume size {vol['size']} is smaller than backup size "
                                     f"{bk['size']}.")
            s.execute(V.update().where(V.c.id == volume_id).values(status="restoring-backup"))
            s.execute(B.update().where(B.c.id == backup_id).values(status="restoring"))
        self._submit(self._do_restore, ctx, backup_id, volume_id)
        return {"backup_id": backup_id, "volume_id": volume_id, "volume_name": vol["name"]}

    def _do_restore(self, ctx, backup_id: str, volume_id: str) -> None:
        with self.db.reader() as s:
            vol = dict(s.execute(sa.select(V).where(V.c.id == volume_id)).first()._mapping)
        status = "available"
        try:
            with self.volume_lock(volume_id):
                driver = self.backend(vol["backend"]).driver
                self.backup_store.restore_into(backup_id, driver, vol["provider_location"])
        except Exception as exc:  # noqa: BLE001
            status = "error_restoring"
            self.add_message(vol["project_id"], "VOLUME", volume_id, f"restore backup: {exc}")
        with self.db.session() as s:
            s.execute(V.update().where(V.c.id == volume_id).values(status=status,
                                                                    updated_at=utcnow()))
            s.execute(B.update().where(B.c.id == backup_id).values(status="available"))

    # -- availability zones, pools -----------------------------------------------------------

    def availability_zones(self) -> list[str]:
        zones = sorted(self.scheduler.zones()) or [self.default_zone]
        return zones

    def pools(self) -> list[dict]:
        result = []
        for name, be in self.backends.items():
            for p in self.scheduler.pools(name):
                result.append({"name": f"{be.host}#{p['name']}", "capabilities": {
                    "pool_name": p["name"], "volume_backend_name": be.backend_name,
                    "driver_version": "1.0", "storage_protocol": be.driver.protocol,
                    "vendor_name": "pocketstack",
                    "total_capacity_gb": p["total_capacity_gb"],
                    "free_capacity_gb": p["free_capacity_gb"],
                    "provisioned_capacity_gb": self._provisioned(name, p["name"]),
                    "max_over_subscription_ratio": be.max_over_subscription_ratio,
                    "reserved_percentage": be.reserved_percentage,
                    "thin_provisioning_support": be.thin,
                    "thick_provisioning_support": not be.thin,
                    "multiattach": True, "timestamp": None}})
        return result


def conversion_dir(conf) -> str:
    path = conf.volume_image_conversion_dir or os.path.join(conf.state_path,
                                                            "volume-conversion")
    os.makedirs(path, exist_ok=True)
    return path
