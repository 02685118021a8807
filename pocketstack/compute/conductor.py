"""The conductor: compute's only database user.

It owns the instance records, schedules (filters + an atomic claim on the
chosen node), allocates ports through the networking service, and drives
the agents over the bus. Agents reach state only through the methods of
``ConductorEndpoint`` (``rpcapi.ConductorAPI``); the API process calls the
``Conductor`` object directly (``[conductor] use_local``).
"""

from __future__ import annotations

import base64
import datetime
import logging
import uuid
from typing import Any

import sqlalchemy as sa

from pocketstack.common import errors, rpc
from pocketstack.common.db import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import rpcapi, scheduler, sql, states
from pocketstack.compute.console import tokens as console_tokens
from pocketstack.compute.integration import ImageAdapter, NetworkAdapter, as_context, context_dict
from pocketstack.compute.options import default_zone
from pocketstack.compute.quota_classes import QuotaClasses

LOG = logging.getLogger(__name__)

# What an agent may change on an instance.
AGENT_FIELDS = {"vm_state", "task_state", "power_state", "launched_at", "host", "node",
                "network_info", "progress", "terminated_at", "root_device_name"}


class NoValidHost(Exception):
    pass


def row(r) -> dict | None:
    return None if r is None else dict(r._mapping)


class Conductor:
    def __init__(self, service):
        self.service = service
        self.conf = service.conf
        self.db = service.db
        self.transport = service.transport
        self.images = ImageAdapter(service.cloud)
        self.network = NetworkAdapter(service.cloud)
        self.agents = rpcapi.ComputeAgentAPI(self.transport)
        self.fast = sql.Fast(self.db)
        self.quota_classes = QuotaClasses(self.db, self.conf)
        self._project_locks: set[str] = set()
        self._zones: dict[str, str] = {}
        conf = self.conf
        self._claim = sql.claim_statement(conf.cpu_allocation_ratio, conf.ram_allocation_ratio,
                                          conf.disk_allocation_ratio,
                                          conf.reserved_host_memory_mb)
        self.self_client = rpc.RPCClient(self.transport, rpcapi.CONDUCTOR_TOPIC,
                                         version=rpcapi.CONDUCTOR_VERSION,
                                         namespace="build")

    # == services and nodes ===================================================

    def service_up(self, svc: dict, now: datetime.datetime | None = None) -> bool:
        if svc["forced_down"]:
            return False
        seen = svc["last_seen_at"] or svc["updated_at"] or svc["created_at"]
        if seen is None:
            return False
        now = now or utcnow()
        return (now - seen).total_seconds() <= self.conf.service_down_time

    def report_service(self, host: str, binary: str, topic: str, resources: dict | None,
                       version: int) -> dict:
        def txn(s):
            now = utcnow()
            found = row(s.execute(sa.select(m.service).where(
                m.service.c.host == host, m.service.c.binary == binary)).first())
            if found is None:
                s.execute(m.service.insert().values(
                    uuid=str(uuid.uuid4()), host=host, binary=binary, topic=topic,
                    disabled=False, forced_down=False, version=version, last_seen_at=now,
                    created_at=now, updated_at=now))
                found = {"disabled": False}
            else:
                s.execute(m.service.update().where(m.service.c.id == found["id"]).values(
                    last_seen_at=now, version=version))
            if resources:
                node = row(s.execute(sa.select(m.compute_node).where(
                    m.compute_node.c.host == host)).first())
                values = {k: resources[k] for k in ("vcpus", "memory_mb", "local_gb",
                                                    "hypervisor_type", "hypervisor_version",
                                                    "host_ip", "cpu_info")
                          if k in resources}
                values["hypervisor_hostname"] = resources.get("hypervisor_hostname") or host
                if node is None:
                    s.execute(m.compute_node.insert().values(
                        uuid=str(uuid.uuid4()), host=host, updated_at=now, **values))
                else:
                    s.execute(m.compute_node.update().where(
                        m.compute_node.c.id == node["id"]).values(updated_at=now, **values))
            return {"disabled": bool(found["disabled"])}

        return self.db.transaction(txn)

    def recount_host(self, host: str) -> None:
        """Recompute a node's usage from its instances (after an agent's restart)."""
        def txn(s):
            live = sa.and_(m.instance.c.host == host, m.instance.c.deleted.is_(False),
                           m.instance.c.vm_state != states.SHELVED_OFFLOADED)
            used = s.execute(sa.select(
                sa.func.coalesce(sa.func.sum(m.instance.c.vcpus), 0),
                sa.func.coalesce(sa.func.sum(m.instance.c.memory_mb), 0),
                sa.func.coalesce(sa.func.sum(m.instance.c.root_gb), 0),
                sa.func.count()).where(live)).first()
            # a resize holds the old flavor on its source host until confirmed
            olds = s.execute(sa.select(m.instance.c.old_flavor).where(
                m.instance.c.old_host == host, m.instance.c.deleted.is_(False),
                m.instance.c.old_flavor.is_not(None))).scalars().all()
            extra = [sum(int(f.get(k, 0)) for f in olds) for k in ("vcpus", "ram", "disk")]
            s.execute(m.compute_node.update().where(m.compute_node.c.host == host).values(
                vcpus_used=used[0] + extra[0], memory_mb_used=used[1] + extra[1],
                local_gb_used=used[2] + extra[2], running_vms=used[3]))

        self.db.transaction(txn)

    # == instances ============================================================

    def get_instance(self, instance_uuid: str, *, project_id: str | None = None,
                     deleted: bool = False) -> dict:
        with self.fast.read() as conn:
            inst = row(conn.execute(sql.SELECT_INSTANCE, {"uuid": instance_uuid}).first())
        if inst is None or (inst["deleted"] and not deleted) or (
                project_id is not None and inst["project_id"] != project_id):
            raise errors.NotFound(f"Instance {instance_uuid} could not be found.")
        return inst

    def update_instance(self, instance_uuid: str, values: dict, *,
                        expected_vm_state: list[str] | None = None,
                        expected_task_state: list | None = None,
                        finish: tuple | None = None) -> dict:
        """Change an instance if it is in an expected state (a compare-and-set)."""
        params = {**values, "updated_at": utcnow(), "_uuid": instance_uuid}
        wanted = None
        if expected_task_state is not None:
            wanted = [t for t in expected_task_state if t is not None]
            if wanted:
                params["_task_states"] = wanted
        if expected_vm_state is not None:
            params["_vm_states"] = list(expected_vm_state)
        stmt = sql.instance_update(
            tuple(sorted(k for k in params if not k.startswith("_"))),
            expected_vm_state is not None, bool(wanted),
            expected_task_state is not None and None in expected_task_state)
        impossible = expected_task_state is not None and not wanted and \
            None not in expected_task_state

        def txn(s):
            result = s.execute(stmt, params) if not impossible else None
            current = row(s.execute(sql.SELECT_INSTANCE, {"uuid": instance_uuid}).first())
            if current is None or current["deleted"]:
                raise errors.NotFound(f"Instance {instance_uuid} could not be found.")
            if result is None or result.rowcount != 1:
                raise StateConflict(current)
            if finish is not None:
                self._finish_action(s, instance_uuid, *finish)
            return current

        return self.fast.tx(txn)

    def record_action(self, ctx, instance_uuid: str, action: str, *, s=None,
                      message: str | None = None) -> None:
        values = dict(instance_uuid=instance_uuid, action=action,
                      request_id=ctx.get("request_id") if isinstance(ctx, dict)
                      else ctx.request_id,
                      user_id=ctx.get("user_id") if isinstance(ctx, dict) else ctx.user_id,
                      project_id=ctx.get("project_id") if isinstance(ctx, dict)
                      else ctx.project_id,
                      start_time=utcnow(), updated_at=utcnow(), message=message,
                      events=[])
        if s is not None:
            s.execute(sql.INSERT_ACTION, values)
        else:
            self.fast.tx(lambda conn: conn.execute(sql.INSERT_ACTION, values))

    # -- migrations (resize, cold and live migration) -------------------------------

    def record_migration(self, ctx, inst: dict, kind: str, source: str, dest: str,
                         new_flavor: dict) -> None:
        now = utcnow()
        with self.db.session() as s:
            ids = dict(s.execute(sa.select(m.flavor.c.flavorid, m.flavor.c.id).where(
                m.flavor.c.flavorid.in_([inst["flavor"]["flavorid"],
                                         new_flavor["flavorid"]]))).all())
            s.execute(m.migration.insert().values(
                uuid=str(uuid.uuid4()), instance_uuid=inst["uuid"], migration_type=kind,
                status="migrating" if kind == "live-migration" else "pre-migrating",
                source_compute=source, dest_compute=dest,
                old_flavor_id=ids.get(inst["flavor"]["flavorid"]),
                new_flavor_id=ids.get(new_flavor["flavorid"]),
                project_id=inst["project_id"], user_id=inst["user_id"], created_at=now,
                updated_at=now))

    def set_migration_status(self, instance_uuid: str, status: str,
                             only: tuple[str, ...] | None = None) -> None:
        with self.db.session() as s:
            last = s.execute(sa.select(m.migration.c.id, m.migration.c.status).where(
                m.migration.c.instance_uuid == instance_uuid).order_by(
                m.migration.c.id.desc()).limit(1)).first()
            if last is not None and (only is None or last.status in only):
                s.execute(m.migration.update().where(m.migration.c.id == last.id).values(
                    status=status, updated_at=utcnow()))

    def finish_action(self, instance_uuid: str, result: str, host: str | None,
                      traceback: str | None = None) -> None:
        self.fast.tx(self._finish_action, instance_uuid, result, host, traceback)

    def _finish_action(self, s, instance_uuid: str, result: str, host: str | None,
                       traceback: str | None = None) -> None:
        last = row(s.execute(sql.LAST_ACTION, {"uuid": instance_uuid}).first())
        if last is None:
            return
        now = utcnow()
        event = {"event": f"compute_{last['action']}", "start_time": now.isoformat(),
                 "finish_time": now.isoformat(), "result": result, "host": host,
                 "traceback": traceback}
        s.execute(sql.UPDATE_ACTION, {
            "_id": last["id"], "events": [*last["events"], event], "updated_at": now,
            "message": "Error" if result == "Error" else last["message"]})

    # -- quotas --------------------------------------------------------------

    def quota_limits(self, project_id: str, s=None) -> dict[str, int]:
        defaults = self.quota_classes.defaults()
        def read(sess):
            return sess.execute(sql.SELECT_QUOTAS, {"project_id": project_id}).all()
        if s is None:
            with self.fast.read() as sess:
                rows = read(sess)
        else:
            rows = read(s)
        defaults.update({r: v for r, v in rows})
        return defaults

    def usage(self, s, project_id: str, *, groups: bool = True) -> dict[str, int]:
        used = s.execute(sql.USAGE, {"project_id": project_id}).first()
        out = {"instances": used[0], "cores": int(used[1]), "ram": int(used[2])}
        if groups:
            out["server_groups"] = s.execute(sql.GROUP_COUNT,
                                             {"project_id": project_id}).scalar()
        return out

    def ensure_project_lock(self, project_id: str) -> None:
        """Create the project's quota lock row, in a transaction of its own, before the
        caller's transaction: two first inserts racing inside callers' transactions
        deadlock on MariaDB."""
        if project_id in self._project_locks:
            return
        try:
            with self.db.session() as s:
                if not s.execute(sql.LOCK_PROJECT, {"_project_id": project_id}).rowcount:
                    s.execute(sql.INSERT_LOCK, {"project_id": project_id, "generation": 1})
        except sa.exc.IntegrityError:
            pass
        self._project_locks.add(project_id)

    def lock_project(self, s, project_id: str) -> None:
        """Serialise quota checks of a project on every engine (call
        ``ensure_project_lock`` before the transaction)."""
        if not s.execute(sql.LOCK_PROJECT, {"_project_id": project_id}).rowcount:
            s.execute(sql.INSERT_LOCK, {"project_id": project_id, "generation": 1})

    def check_quota(self, s, project_id: str, deltas: dict[str, int]) -> None:
        limits = self.quota_limits(project_id, s)
        used = self.usage(s, project_id)
        over = [r for r, d in deltas.items()
                if d > 0 and limits.get(r, -1) >= 0 and used.get(r, 0) + d > limits[r]]
        if over:
            r = over[0]
            raise errors.Forbidden(
                f"Quota exceeded for {', '.join(over)}: Requested {deltas[r]}, but already "
                f"used {used.get(r, 0)} of {limits[r]} {r}", kind="forbidden")

    # -- create --------------------------------------------------------------

    def create_instances(self, ctx, base: dict, count: int, group_id: int | None,
                         min_count: int) -> list[dict]:
        """Insert the instance rows (quota-checked) in one transaction."""
        self.ensure_project_lock(base["project_id"])
        def txn(s):
            self.lock_project(s, base["project_id"])
            limits = self.quota_limits(base["project_id"], s)
            used = self.usage(s, base["project_id"], groups=False)
            flavor = base["flavor"]
            n = count
            # max_count: as many as the quota allows, at least min_count
            for resource, per in (("instances", 1), ("cores", flavor["vcpus"]),
                                  ("ram", flavor["ram"])):
                limit = limits[resource]
                if limit < 0 or per == 0:
                    continue
                room = (limit - used[resource]) // per
                if room < n:
                    n = max(room, 0)
            if n < min_count:
                deltas = {"instances": min_count, "cores": flavor["vcpus"] * min_count,
                          "ram": flavor["ram"] * min_count}
                self.check_quota(s, base["project_id"], deltas)
            if group_id is not None:
                members = s.execute(sa.select(sa.func.count()).select_from(
                    m.server_group_member).where(
                    m.server_group_member.c.group_id == group_id)).scalar()
                if limits["server_group_members"] >= 0 and \
                        members + n > limits["server_group_members"]:
                    raise errors.Forbidden("Quota exceeded, too many servers in group",
                                           kind="forbidden")
            now = utcnow()
            created = []
            reservation = base["reservation_id"]
            for index in range(n):
                values = dict(base)
                values.update(uuid=str(uuid.uuid4()), launch_index=index,
                              created_at=now, updated_at=now, reservation_id=reservation)
                if n > 1 and base.get("_multi_names"):
                    values["display_name"] = f"{base['display_name']}-{index + 1}"
                    values["hostname"] = f"{base['hostname']}-{index + 1}"
                values.pop("_multi_names", None)
                s.execute(sql.INSERT_INSTANCE, values)
                if group_id is not None:
                    s.execute(sql.INSERT_MEMBER, {"group_id": group_id,
                                                  "instance_uuid": values["uuid"]})
                self.record_action(ctx, values["uuid"], "create", s=s)
                created.append(values)
            return created

        return self.fast.tx(txn)

    def start_build(self, ctx, instance_uuids: list[str]) -> None:
        self.self_client.cast(context_dict(ctx) if not isinstance(ctx, dict) else ctx,
                              "build_instances", instance_uuids=instance_uuids)

    # -- scheduling ----------------------------------------------------------

    def host_states(self, s) -> list[scheduler.HostState]:
        now = utcnow()
        services = {r.host: row(r) for r in s.execute(
            sql.SERVICES, {"binary": "pocketstack-compute"}).all()}
        aggs: dict[str, list[dict]] = {}
        for agg_meta, host in s.execute(sql.AGGREGATE_HOSTS).all():
            aggs.setdefault(host, []).append(agg_meta)
        result = []
        default_az = default_zone(self.conf)
        for node in s.execute(sql.NODES).all():
            svc = services.get(node.host)
            if svc is None:
                continue
            metas = aggs.get(node.host, [])
            zone = next((md["availability_zone"] for md in metas
                         if md.get("availability_zone")), default_az)
            result.append(scheduler.HostState(
                host=node.host, node=node.hypervisor_hostname, vcpus=node.vcpus,
                memory_mb=node.memory_mb, local_gb=node.local_gb, vcpus_used=node.vcpus_used,
                memory_mb_used=node.memory_mb_used, local_gb_used=node.local_gb_used,
                up=self.service_up(svc, now), disabled=svc["disabled"], availability_zone=zone,
                aggregate_metadata=metas, hypervisor_type=node.hypervisor_type,
                cpu_info=node.cpu_info or {}, running_vms=node.running_vms))
        return result

    def host_zone(self, s, host: str) -> str:
        for meta in s.execute(sa.select(m.aggregate.c.meta).join(m.aggregate_host).where(
                m.aggregate_host.c.host == host)).scalars():
            if meta.get("availability_zone"):
                return meta["availability_zone"]
        return default_zone(self.conf)

    def claim(self, s, host: str, vcpus: int, ram: int, disk: int) -> bool:
        """Take resources on a node if they fit its ratios: one atomic UPDATE."""
        result = s.execute(self._claim, {"_host": host, "_vcpus": vcpus, "_ram": ram,
                                         "_disk": disk})
        return result.rowcount == 1

    def release(self, s, host: str | None, flavor: dict | None, *, vm: bool = True) -> None:
        if not host or not flavor:
            return
        n = m.compute_node.c
        s.execute(m.compute_node.update().where(n.host == host).values(
            vcpus_used=sa.func.max(n.vcpus_used - int(flavor.get("vcpus", 0)), 0)
            if self.db.dialect == "sqlite" else
            sa.func.greatest(n.vcpus_used - int(flavor.get("vcpus", 0)), 0),
            memory_mb_used=n.memory_mb_used - int(flavor.get("ram", 0)),
            local_gb_used=n.local_gb_used - int(flavor.get("disk", 0)),
            running_vms=n.running_vms - (1 if vm else 0)))

    def request_spec(self, s, inst: dict, flavor: dict) -> scheduler.RequestSpec:
        rs = inst["request_spec"] or {}
        spec = scheduler.RequestSpec(
            vcpus=int(flavor["vcpus"]), memory_mb=int(flavor["ram"]),
            disk_gb=int(flavor["disk"]) + int(flavor.get("ephemeral", 0)),
            extra_specs=flavor.get("extra_specs") or {},
            image_properties=rs.get("image_properties") or {},
            availability_zone=rs.get("availability_zone"), force_host=rs.get("force_host"))
        hints = rs.get("scheduler_hints") or {}
        for key, attr in (("same_host", "same_host"), ("different_host", "different_host")):
            wanted = hints.get(key)
            if wanted:
                wanted = [wanted] if isinstance(wanted, str) else wanted
                hosts = s.execute(sa.select(m.instance.c.host).where(
                    m.instance.c.uuid.in_(wanted), m.instance.c.deleted.is_(False))).scalars()
                setattr(spec, attr, {h for h in hosts if h})
        group_uuid = rs.get("group")
        if group_uuid:
            q = sa.select(m.server_group).where(m.server_group.c.uuid == group_uuid)
            if self.db.dialect != "sqlite":
                q = q.with_for_update()
            group = row(s.execute(q).first())
            if group is not None:
                spec.group_policy = group["policy"]
                spec.group_max_per_host = int((group["rules"] or {}).get(
                    "max_server_per_host", 1))
                member_hosts = s.execute(sa.select(m.instance.c.host).join(
                    m.server_group_member,
                    m.server_group_member.c.instance_uuid == m.instance.c.uuid).where(
                    m.server_group_member.c.group_id == group["id"],
                    m.instance.c.deleted.is_(False), m.instance.c.host.is_not(None),
                    m.instance.c.uuid != inst["uuid"])).scalars().all()
                spec.group_hosts = set(member_hosts)
                for h in member_hosts:
                    spec.group_host_counts[h] = spec.group_host_counts.get(h, 0) + 1
                if spec.group_policy.startswith("soft-"):
                    spec.soft_policy = spec.group_policy
                    spec.group_policy = None
        return spec

    def schedule(self, s, inst: dict, flavor: dict, *, ignore: set[str] | None = None,
                 force_host: str | None = None) -> str:
        spec = self.request_spec(s, inst, flavor)
        if ignore:
            spec.ignore_hosts = set(ignore)
        if force_host:
            spec.force_host = force_host
            spec.availability_zone = None
        hosts = scheduler.filter_hosts(self.host_states(s), spec, self.conf)
        for host in scheduler.weigh_hosts(hosts, spec, self.conf):
            if self.claim(s, host.host, spec.vcpus, spec.memory_mb, spec.disk_gb):
                self._zones[host.host] = host.availability_zone
                return host.host
        raise NoValidHost("No valid host was found. There are not enough hosts available.")

    # == the build ===========================================================

    def build_instances(self, ctx: dict, instance_uuids: list[str]) -> None:
        for instance_uuid in instance_uuids:
            try:
                self.build_one(ctx, instance_uuid)
            except Exception as exc:  # noqa: BLE001 - the server must not stay in BUILD
                LOG.exception("building %s", instance_uuid)
                self.set_error(instance_uuid, str(exc) or exc.__class__.__name__, 500)

    def build_one(self, ctx: dict, instance_uuid: str) -> None:
        def place(s):
            inst = row(s.execute(sql.SELECT_INSTANCE, {"uuid": instance_uuid}).first())
            if inst is None or inst["deleted"] or inst["vm_state"] != states.BUILDING \
                    or inst["task_state"] not in (states.SCHEDULING, None) or inst["host"]:
                return None
            tried = ((inst["request_spec"] or {}).get("retry") or {}).get("hosts")
            host = self.schedule(s, inst, inst["flavor"], ignore=set(tried or ()))
            zone = self._zones.get(host) or self.host_zone(s, host)
            wants_ports = self.network.manager is not None and \
                (inst["request_spec"] or {}).get("networks", "none") != "none"
            task = states.NETWORKING if wants_ports else states.SPAWNING
            s.execute(sql.PLACE, {"_uuid": instance_uuid, "host": host, "node": host,
                                  "availability_zone": zone, "task_state": task,
                                  "updated_at": utcnow()})
            inst.update(host=host, node=host, availability_zone=zone, task_state=task)
            return inst

        try:
            inst = self.fast.tx(place)
        except NoValidHost as exc:
            last = self._last_build_failure(instance_uuid)
            self.set_error(instance_uuid, f"{exc} Last exception: {last}" if last else str(exc),
                           500, details="")
            return
        if inst is None:
            return
        rs = inst["request_spec"] or {}
        if inst["block_devices"] and not self.attach_boot_volumes(ctx, inst):
            return
        if inst["task_state"] == states.SPAWNING:  # no ports to make
            self.cast_build(ctx, inst, [])
            return
        uctx = as_context(ctx, inst["project_id"], inst["user_id"])
        try:
            network_info = self.network.allocate(uctx, inst, inst["host"],
                                                 rs.get("networks", "none"),
                                                 inst["security_groups"] or [])
        except Exception as exc:  # noqa: BLE001
            LOG.warning("allocating network for %s: %s", instance_uuid, exc)
            self.set_error(instance_uuid, f"Build of instance {instance_uuid} aborted: "
                           f"Failed to allocate the network(s): {exc}", 500, release=True)
            return
        try:
            inst = self.update_instance(instance_uuid, {"network_info": network_info,
                                                        "task_state": states.SPAWNING},
                                        expected_task_state=[states.NETWORKING])
        except (StateConflict, errors.NotFound):
            # deleted while we allocated: give the ports back
            self.network.deallocate(uctx, network_info)
            self.maybe_finish_unscheduled_delete(instance_uuid)
            return
        self.cast_build(ctx, inst, network_info)

    def _last_build_failure(self, instance_uuid: str) -> str | None:
        try:
            rs = self.get_instance(instance_uuid)["request_spec"] or {}
        except errors.NotFound:
            return None
        return (rs.get("retry") or {}).get("last_exception")

    def reschedule(self, ctx, inst: dict, host: str, reason: str) -> bool:
        """A spawn failed on ``host``: build on another host (``[scheduler]
        max_attempts`` in all), or go to ERROR with the last failure as the fault.
        Servers booting from volumes are not moved (their volumes are prepared)."""
        rs = dict(inst["request_spec"] or {})
        retry = dict(rs.get("retry") or {"num_attempts": 1, "hosts": []})
        max_attempts = self.conf.scheduler.max_attempts
        if inst["block_devices"]:
            return False
        if retry["num_attempts"] >= max_attempts:
            if max_attempts > 1:
                self.set_error(inst["uuid"], "Exceeded maximum number of retries. Exceeded "
                               f"max scheduling attempts {max_attempts} for instance "
                               f"{inst['uuid']}. Last exception: {reason}", 500, release=True)
                return True
            return False
        rs["retry"] = {"num_attempts": retry["num_attempts"] + 1,
                       "hosts": [*retry["hosts"], host], "last_exception": reason}

        def txn(s):
            current = row(s.execute(sql.SELECT_INSTANCE, {"uuid": inst["uuid"]}).first())
            if current is None or current["deleted"] or current["host"] != host \
                    or current["task_state"] not in (states.SPAWNING, states.NETWORKING):
                return False
            self.release(s, host, current["flavor"])
            s.execute(sql.PLACE, {"_uuid": inst["uuid"], "host": None, "node": None,
                                  "availability_zone": current["availability_zone"],
                                  "task_state": states.SCHEDULING, "updated_at": utcnow()})
            s.execute(m.instance.update().where(m.instance.c.uuid == inst["uuid"]).values(
                request_spec=rs))
            return True

        if not self.db.transaction(txn):
            return False
        self.finish_action(inst["uuid"], "Error", host, reason)
        LOG.info("rescheduling %s after a failed spawn on %s", inst["uuid"], host)
        self.start_build(ctx, [inst["uuid"]])
        return True

    def attach_boot_volumes(self, ctx, inst: dict) -> bool:
        from pocketstack.compute import volumes

        try:
            bdms = volumes.prepare_boot_volumes(
                self.service, as_context(ctx, inst["project_id"], inst["user_id"]), inst)
            inst.update(self.update_instance(inst["uuid"], {"block_devices": bdms}))
            return True
        except Exception as exc:  # noqa: BLE001 - the server goes to ERROR with the reason
            LOG.warning("volumes of %s: %s", inst["uuid"], exc)
            self.set_error(inst["uuid"], f"Build of instance {inst['uuid']} aborted: "
                           f"Failure prepping block device: {exc}", 500, release=True)
            return False

    def cast_build(self, ctx, inst: dict, network_info: list[dict]) -> None:
        rs = inst["request_spec"] or {}
        self.agents.cast(ctx, inst["host"], "build_and_run_instance",
                         instance=self.agent_view(inst),
                         image_meta=rs.get("image_meta") or {},
                         network_info=network_info,
                         block_device_info=self.block_device_info(inst),
                         admin_password=rs.get("admin_password"))

    def maybe_finish_unscheduled_delete(self, instance_uuid: str) -> None:
        try:
            inst = self.get_instance(instance_uuid)
        except errors.NotFound:
            return
        if inst["task_state"] == states.DELETING:
            self.destroyed(instance_uuid, inst["host"])

    def block_device_info(self, inst: dict) -> dict:
        return {"root_device_name": inst.get("root_device_name") or "/dev/vda",
                "block_device_mapping": [
                    {"volume_id": b["volume_id"], "device_name": b.get("device_name"),
                     "connection_info": b.get("connection_info"),
                     "delete_on_termination": bool(b.get("delete_on_termination")),
                     "boot_index": b.get("boot_index")}
                    for b in inst["block_devices"] or [] if b.get("volume_id")],
                "ephemerals": [], "swap": None}

    def agent_view(self, inst: dict) -> dict:
        """The instance as an agent receives it (no database objects)."""
        flavor = inst["flavor"]
        return {"uuid": inst["uuid"], "id": inst["id"],
                "name": self.conf.instance_name_template % inst["id"],
                "hostname": inst["hostname"], "display_name": inst["display_name"],
                "flavor": flavor, "image_ref": inst["image_ref"], "key_data": inst["key_data"],
                "user_data": inst["user_data"], "metadata": inst["meta"],
                "project_id": inst["project_id"], "user_id": inst["user_id"],
                "vm_state": inst["vm_state"], "task_state": inst["task_state"],
                "power_state": inst["power_state"], "host": inst["host"],
                "network_info": inst["network_info"] or [],
                "availability_zone": inst["availability_zone"],
                "old_flavor": inst["old_flavor"], "new_flavor": inst["new_flavor"],
                "old_host": inst["old_host"]}

    def set_error(self, instance_uuid: str, message: str, code: int, *, details: str = "",
                  release: bool = False) -> None:
        def txn(s):
            inst = row(s.execute(sa.select(m.instance).where(
                m.instance.c.uuid == instance_uuid)).first())
            if inst is None or inst["deleted"]:
                return None
            fault = {"code": code, "message": message, "details": details,
                     "created": utcnow().isoformat()}
            values = {"vm_state": states.ERROR, "fault": fault, "updated_at": utcnow()}
            if inst["task_state"] != states.DELETING:
                values["task_state"] = None
            if release and inst["host"]:
                self.release(s, inst["host"], inst["flavor"])
                values["host"] = None
                values["node"] = None
            s.execute(m.instance.update().where(m.instance.c.uuid == instance_uuid)
                      .values(**values))
            return inst

        inst = self.db.transaction(txn)
        if inst is not None:
            self.finish_action(instance_uuid, "Error", inst["host"], message)
            if inst["task_state"] == states.DELETING:
                self.maybe_finish_unscheduled_delete(instance_uuid)

    # == delete ==============================================================

    def destroyed(self, instance_uuid: str, host: str | None) -> None:
        """The guest is gone (or never existed): free everything, mark deleted."""
        try:
            current = self.get_instance(instance_uuid)
        except errors.NotFound:
            return
        if current["block_devices"]:
            from pocketstack.compute import volumes

            volumes.release_all(self.service, current)
        if current["network_info"]:
            # ports first: a server that is gone has nothing left behind
            uctx = as_context(None, current["project_id"], current["user_id"])
            self.network.deallocate(uctx, current["network_info"])

        def txn(s):
            inst = row(s.execute(sa.select(m.instance).where(
                m.instance.c.uuid == instance_uuid)).first())
            if inst is None or inst["deleted"]:
                return None
            if inst["host"] and inst["vm_state"] != states.SHELVED_OFFLOADED:
                self.release(s, inst["host"], inst["flavor"])
            if inst["old_host"] and inst["old_flavor"]:
                self.release(s, inst["old_host"], inst["old_flavor"], vm=False)
            now = utcnow()
            s.execute(m.instance.update().where(m.instance.c.uuid == instance_uuid).values(
                deleted=True, deleted_at=now, terminated_at=now, vm_state=states.DELETED,
                task_state=None, power_state=0, updated_at=now))
            s.execute(m.server_group_member.delete().where(
                m.server_group_member.c.instance_uuid == instance_uuid))
            console_tokens.delete_for_instance(s, instance_uuid)
            return inst

        inst = self.db.transaction(txn)
        late = [v for v in (inst or {}).get("network_info") or []
                if v["id"] not in {c["id"] for c in current["network_info"] or []}]
        if late:
            self.network.deallocate(as_context(None, inst["project_id"], inst["user_id"]),
                                    late)

    def delete_instance(self, ctx, inst: dict) -> None:
        """Start a delete; it always ends (locally when the host is gone)."""
        host = inst["host"]
        if not host or inst["vm_state"] == states.SHELVED_OFFLOADED or not self.host_up(host):
            self.destroyed(inst["uuid"], host)
            return
        self.agents.cast(context_dict(ctx), host, "terminate_instance",
                         instance=self.agent_view(inst))

    def host_up(self, host: str) -> bool:
        with self.db.reader() as s:
            svc = row(s.execute(sa.select(m.service).where(
                m.service.c.host == host, m.service.c.binary == "pocketstack-compute")).first())
        return svc is not None and self.service_up(svc)

    # == recovery at start ===================================================

    def recover(self) -> None:
        """After a restart: builds that never reached a host are scheduled again."""
        with self.db.reader() as s:
            pending = s.execute(sa.select(m.instance.c.uuid, m.instance.c.task_state).where(
                m.instance.c.deleted.is_(False), m.instance.c.host.is_(None),
                m.instance.c.task_state.is_not(None))).all()
        rebuild = []
        for instance_uuid, task_state in pending:
            if task_state == states.DELETING:
                self.destroyed(instance_uuid, None)
            elif task_state in (states.SCHEDULING, states.NETWORKING):
                rebuild.append(instance_uuid)
            else:
                try:
                    self.update_instance(instance_uuid, {"task_state": None})
                except (StateConflict, errors.NotFound):
                    pass
        if rebuild:
            self.start_build({"internal": True}, rebuild)


class StateConflict(Exception):
    def __init__(self, instance: dict):
        self.instance = instance
        super().__init__(instance["uuid"])


class ConductorEndpoint:
    """What agents may ask of the conductor (interface ``rpcapi.CONDUCTOR_VERSION``)."""

    target_version = rpcapi.CONDUCTOR_VERSION

    def __init__(self, conductor: Conductor):
        self.c = conductor

    def report_service(self, ctx, host, binary, topic, resources, version, **_):
        result = self.c.report_service(host, binary, topic, resources, version)
        with self.c.db.reader() as s:
            metas = s.execute(sa.select(m.aggregate.c.meta).join(m.aggregate_host).where(
                m.aggregate_host.c.host == host)).scalars().all()
        result["aggregates"] = list(metas)
        return result

    @rpc.wants_version
    def instance_update(self, ctx, instance_uuid, updates=None, values=None,
                        expected_task_state: Any = "<any>", _version="1.0"):
        # 1.0 agents send ``values`` and no expected state; 1.1+ send ``updates``.
        changes = dict(updates if updates is not None else values or {})
        unknown = set(changes) - AGENT_FIELDS
        if unknown:
            raise ValueError(f"agents may not change {sorted(unknown)}")
        for key in ("launched_at", "terminated_at"):
            if changes.get(key) == "now":
                changes[key] = utcnow()
            elif isinstance(changes.get(key), str):
                changes[key] = datetime.datetime.fromisoformat(changes[key])
        expected = None
        if expected_task_state != "<any>" and rpc.parse_version(_version) >= (1, 1):
            expected = expected_task_state if isinstance(expected_task_state, list) \
                else [expected_task_state]
        finish = ("Success", changes.get("host") or None) \
            if changes.get("task_state", "x") is None else None
        if changes.get("vm_state") == states.RESIZED:
            self.c.set_migration_status(instance_uuid, "finished")
        elif changes.get("host") and changes.get("task_state", "x") is None:
            self.c.set_migration_status(instance_uuid, "completed", only=("migrating",))
        try:
            inst = self.c.update_instance(instance_uuid, changes, expected_task_state=expected,
                                          finish=finish)
        except StateConflict as exc:
            return {"updated": False, "task_state": exc.instance["task_state"]}
        return {"updated": True, "task_state": inst["task_state"]}

    def build_failed(self, ctx, instance_uuid, host, reason, **_):
        try:
            inst = self.c.get_instance(instance_uuid)
        except errors.NotFound:
            return None
        # ports first: when the server shows ERROR nothing of it is left behind
        uctx = as_context(ctx, inst["project_id"], inst["user_id"])
        self.c.network.deallocate(uctx, inst["network_info"] or [])
        try:
            self.c.update_instance(instance_uuid, {"network_info": []})
        except (StateConflict, errors.NotFound):
            pass
        if self.c.reschedule(ctx, inst, host, reason):
            return None
        self.c.set_error(instance_uuid, reason, 500, release=True)
        return None

    def operation_failed(self, ctx, instance_uuid, operation, reason, updates, **_):
        try:
            self.c.update_instance(instance_uuid, dict(updates or {}))
        except (StateConflict, errors.NotFound):
            pass
        self.c.finish_action(instance_uuid, "Error", None, reason)
        return None

    def instance_destroyed(self, ctx, instance_uuid, host, **_):
        self.c.destroyed(instance_uuid, host)

    def host_instances(self, ctx, host, **_):
        with self.c.db.reader() as s:
            rows = s.execute(sa.select(m.instance).where(
                m.instance.c.host == host, m.instance.c.deleted.is_(False))).all()
        return [self.c.agent_view(row(r)) for r in rows]

    def upload_snapshot(self, ctx, instance_uuid, image_id, data_b64, **_):
        inst = self.c.get_instance(instance_uuid, deleted=True)
        uctx = as_context(ctx, inst["project_id"], inst["user_id"])
        self.c.images.upload(uctx, image_id, base64.b64decode(data_b64))


class BuildEndpoint:
    """Work the API hands to the conductor's own workers (not for agents)."""

    namespace = "build"
    target_version = rpcapi.CONDUCTOR_VERSION

    def __init__(self, conductor: Conductor):
        self.c = conductor

    def build_instances(self, ctx, instance_uuids, **_):
        self.c.build_instances(ctx, instance_uuids)
