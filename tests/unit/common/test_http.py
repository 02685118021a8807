"""The shared HTTP layer: request ids, error shapes, body limits, threading."""

import asyncio

from starlette.testclient import TestClient

from pocketstack.common import errors
from pocketstack.common.http import Api, RequestIdMiddleware, nova_error_body


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def make_client(**kw) -> TestClient:
    api = Api(error_body=nova_error_body, max_body_size=64, **kw)

    @api.route("/things/{id}")
    def show(req):
        if req.path_params["id"] == "missing":
            raise errors.NotFound("Thing missing could not be found.")
        return {"thing": {"id": req.path_params["id"], "on_loop": _on_event_loop()}}

    @api.route("/things", "POST", status=201)
    def create(req):
        return {"thing": req.json()}

    @api.route("/boom")
    def boom(req):
        raise RuntimeError("secret detail")

    @api.route("/stream")
    async def stream(req):
        return {"on_loop": _on_event_loop()}

    return TestClient(RequestIdMiddleware(api.app()))


def test_request_id_on_every_response():
    client = make_client()
    for path in ("/things/1", "/things/missing", "/nowhere", "/boom"):
        response = client.get(path)
        assert response.headers["x-openstack-request-id"].startswith("req-")


def test_errors_use_the_service_shape():
    client = make_client()
    response = client.get("/things/missing")
    assert response.status_code == 404
    assert response.json() == {"itemNotFound": {"code": 404,
                                                "message": "Thing missing could not be found."}}
    assert client.get("/nowhere").json()["itemNotFound"]["code"] == 404
    response = client.delete("/things/1")
    assert response.status_code == 405
    assert response.json()["badMethod"]["code"] == 405


def test_internal_errors_hide_details():
    response = make_client().get("/boom")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["computeFault"]["code"] == 500


def test_malformed_and_oversized_bodies():
    client = make_client()
    response = client.post("/things", content=b"{not json")
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["badRequest"]["message"]
    response = client.post("/things", content=b'{"a": "' + b"x" * 100 + b'"}')
    assert response.status_code == 413
    assert client.post("/things", json={"a": 1}).status_code == 201


def test_sync_handlers_leave_the_event_loop():
    client = make_client()
    assert client.get("/things/1").json()["thing"]["on_loop"] is False
    assert client.get("/stream").json()["on_loop"] is True


def test_authentication_hook():
    async def authenticate(req, required=True):
        if req.headers.get("x-auth-token") != "good":
            raise errors.Unauthorized()
        return "ctx"

    client = make_client(authenticate=authenticate)
    assert client.get("/things/1").status_code == 401
    assert client.get("/things/1", headers={"X-Auth-Token": "good"}).status_code == 200
