"""How the data plane joins a running cloud.

``cloud_started(cloud)`` (called once every service started):

- registers an image fetcher for the container driver that reads images
  from this cloud's image service (its file when it has one, else its data
  stream);
- registers the guest image in the image service when it is missing, in a
  background thread: the image is built once per builder version under
  ``state_path/guest`` (cached), so ``up`` is not slowed down and a later
  ``up`` finds it at once. Its id is derived from the build, so the same
  build is never registered twice;
- with ``[DEFAULT] compute_driver = container``, runs this host's compute
  agent (``[DEFAULT] host``) in the cloud process with the container driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import uuid

from pocketstack.common.context import RequestContext

LOG = logging.getLogger(__name__)
GUEST_NAMESPACE = uuid.UUID("8f6f3b52-2d1e-4c39-9a53-5a1c0f4d9e21")
GUEST_IMAGE_NAME = "pocketstack-guest"

_clouds: dict[int, dict] = {}


def guest_image_id(path: str) -> str:
    return str(uuid.uuid5(GUEST_NAMESPACE, os.path.basename(path)))


def _image_manager(cloud):
    service = cloud.services.get("image")
    return getattr(service, "manager", None) if service is not None else None


def make_fetcher(cloud):
    def fetch(image_meta: dict, dest: str) -> bool:
        manager = _image_manager(cloud)
        if manager is None or not image_meta.get("id"):
            return False
        ctx = RequestContext.internal_admin()
        try:
            path = manager.data_path(ctx, image_meta["id"])
        except Exception:  # noqa: BLE001 - not this cloud's image
            return False
        if path and os.path.exists(path):
            shutil.copyfile(path, dest)
            return True

        async def stream():
            _image, data = manager.open_data(ctx, image_meta["id"])
            if data is None:
                return False
            with open(dest, "wb") as f:
                async for block in data:
                    f.write(block)
            return True

        try:
            return asyncio.run(stream())
        except Exception:  # noqa: BLE001
            LOG.exception("fetching image %s", image_meta.get("id"))
            return False

    return fetch


def register_guest_image(cloud) -> str | None:
    """Build (cached) and register the guest image; returns its id."""
    from pocketstack.guest import builder

    manager = _image_manager(cloud)
    if manager is None:
        return None
    path = builder.cached_image(cloud.conf.state_path, debs_dir=cloud.conf.guest_image.debs_dir)
    image_id = guest_image_id(path)
    ctx = RequestContext.internal_admin()
    try:
        image = manager.get(ctx, image_id)
        if image.get("status") == "active":
            return image_id
    except Exception:  # noqa: BLE001 - not registered yet
        image = None
    if image is None:
        props = {k: str(v) for k, v in builder.IMAGE_PROPERTIES.items()}
        props["pocketstack_guest_build"] = os.path.basename(path)
        manager.create(ctx, {"id": image_id, "name": GUEST_IMAGE_NAME, "disk_format": "raw",
                             "container_format": "bare", "visibility": "public",
                             "min_disk": 1, **props})
    asyncio.run(manager.upload(ctx, image_id, path, os.path.getsize(path)))
    LOG.info("guest image %s registered as %s", os.path.basename(path), image_id)
    return image_id


def _start_container_agent(cloud):
    compute = cloud.services.get("compute")
    if compute is None or cloud.conf.compute_driver != "container":
        return None
    host = cloud.conf.host
    if any(a.host == host for a in getattr(compute, "agents", [])):
        return None
    from pocketstack.compute.manager import ComputeManager
    from pocketstack.compute.virt.container import ContainerDriver

    agent = ComputeManager(cloud.conf, host, compute.transport,
                           driver=ContainerDriver(cloud.conf, host))
    agent.start()
    compute.agents.append(agent)
    try:
        compute.conductor.recount_host(host)
    except Exception:  # noqa: BLE001
        LOG.exception("recounting %s", host)
    return agent


def register_in_background(cloud) -> threading.Thread | None:
    """What `up` does: make sure the guest image is there, without waiting."""
    if _image_manager(cloud) is None or not cloud.conf.guest_image.register:
        return None

    def run():
        # Background work: a lower CPU priority for this thread and the commands it
        # runs (nice is per thread on Linux), so the API answers first on a small host.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            register_guest_image(cloud)
        except Exception:  # noqa: BLE001
            LOG.exception("registering the guest image")

    thread = threading.Thread(target=run, daemon=True, name="guest-image")
    thread.start()
    entry = _clouds.get(id(cloud))
    if entry is not None:
        entry["thread"] = thread
    return thread


def cloud_started(cloud) -> None:
    from pocketstack.compute.virt import images

    entry = {"fetcher": make_fetcher(cloud), "thread": None}
    images.register_fetcher(entry["fetcher"])
    _clouds[id(cloud)] = entry
    try:
        _start_container_agent(cloud)
    except Exception:  # noqa: BLE001 - the API still serves
        LOG.exception("starting the container compute agent")


def cloud_stopping(cloud) -> None:
    from pocketstack.compute.virt import images

    entry = _clouds.pop(id(cloud), None)
    if entry is None:
        return
    images.unregister_fetcher(entry["fetcher"])
    if entry["thread"] is not None:
        entry["thread"].join(60)
