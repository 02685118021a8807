"""`up` serves identity first and starts the other services behind it: a request to a
service still starting waits for it and gets its real answer (never a 404 or 503)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

import httpx

from pocketstack import cloud as cloud_mod
from pocketstack import config
from pocketstack.testing import FAST_DEFAULTS, start_cloud_process


def _token(url: str, password: str) -> str:
    r = httpx.post(url + "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def test_request_to_a_starting_service_waits_for_its_answer(tmp_path):
    conf = config.load([], {**FAST_DEFAULTS, "state_path": str(tmp_path), "bind_port": 0})
    sock = cloud_mod.bind_socket(conf)
    cloud = cloud_mod.Cloud(conf)
    server = cloud_mod.Server(cloud, sock)
    # Compute's schema sync cannot finish while this lock is held: compute stays
    # "starting" (as when its database is slow) until the test lets it go.
    compute_sync = cloud.services["compute"].db._sync_lock
    compute_sync.acquire()
    failed = threading.Event()
    try:
        cloud.start_in_background(on_failure=failed.set)
        server.start()
        url = cloud.public_url
        token = _token(url, conf.bootstrap.admin_password)  # identity already serves
        with ThreadPoolExecutor(2) as pool:
            flavors = pool.submit(httpx.get, url + "/compute/v2.1/flavors",
                                  headers={"X-Auth-Token": token}, timeout=60)
            metadata = pool.submit(httpx.get, url + "/metadata/", timeout=60)
            # held while compute starts (given time to arrive), not answered 404/503
            wait([flavors, metadata], timeout=1.0)
            assert not flavors.done() and not metadata.done()
            assert not cloud._started["compute"].done()
            compute_sync.release()
            r = flavors.result()
            assert r.status_code == 200, r.text
            assert "m1.tiny" in {f["name"] for f in r.json()["flavors"]}
            assert metadata.result().status_code == 200
    finally:
        if compute_sync.locked():
            compute_sync.release()
        server.stop()
        cloud.stop()
    assert not failed.is_set() and cloud.start_error is None


def test_service_that_fails_to_start_answers_503_and_stops_up(tmp_path):
    conf = config.load([], {**FAST_DEFAULTS, "state_path": str(tmp_path), "bind_port": 0})
    (tmp_path / "image.sqlite").mkdir()  # the image database cannot be opened
    sock = cloud_mod.bind_socket(conf)
    cloud = cloud_mod.Cloud(conf)
    server = cloud_mod.Server(cloud, sock)
    failed = threading.Event()
    try:
        cloud.start_in_background(on_failure=failed.set)
        server.start()
        r = httpx.get(cloud.public_url + "/image/v2/images", timeout=60)
        assert r.status_code == 503
        assert "failed to start" in r.json()["error"]["message"]
        assert failed.wait(60) and cloud.start_error is not None
    finally:
        server.stop()
        cloud.stop()


def test_up_answers_every_service_right_after_identity(tmp_path):
    running = start_cloud_process(str(tmp_path / "cloud"))  # returns once identity answers
    try:
        token = _token(running.url, running.admin_password)
        headers = {"X-Auth-Token": token}
        with httpx.Client(base_url=running.url, headers=headers, timeout=60) as c:
            assert c.get("/compute/v2.1/flavors").status_code == 200
            assert c.get("/networking/v2.0/networks").json() == {"networks": []}
            assert c.get("/image/v2/images").json()["images"] == []
            assert c.get("/volume/v3/volumes").status_code == 200
    finally:
        running.stop()
