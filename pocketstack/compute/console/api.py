"""The remote console API: ``POST /servers/{id}/remote-consoles`` (2.6+), the
older ``os-get*Console`` server actions (2.1-2.5) and ``GET
/os-console-auth-tokens/{token}`` (admin, 2.31+).

A console is asked of the instance's compute agent (its driver says where the
console is reachable); the URL handed out points at this cloud's own proxy
(``/console/<type>?token=...`` on the same port) with a fresh token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pocketstack.common import errors, rpc
from pocketstack.common.http import JSONResponse, Request
from pocketstack.common.validation import validate
from pocketstack.compute import states
from pocketstack.compute.console.tokens import ConsoleTokens
from pocketstack.compute.integration import context_dict

PROXY_PREFIX = "/console"
# protocol -> the console types Nova serves for it
TYPES = {"vnc": ("novnc",), "spice": ("spice-html5", "spice-direct"), "serial": ("serial",),
         "mks": ("webmks",)}
# the 2.1-2.5 actions: action -> (protocol, types its schema accepts)
ACTIONS = {"os-getVNCConsole": ("vnc", ["novnc", "xvpvnc"]),
           "os-getSPICEConsole": ("spice", ["spice-html5"]),
           "os-getSerialConsole": ("serial", ["serial"]),
           "os-getRDPConsole": ("rdp", ["rdp-html5"])}


def create_schema(version: tuple[int, int]) -> dict:
    protocols = ["vnc", "spice", "serial", "rdp"]
    types = ["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"]
    if version >= (2, 8):
        protocols.append("mks")
        types.append("webmks")
    if version >= (2, 99):
        types.append("spice-direct")
    return {"type": "object", "properties": {"remote_console": {
        "type": "object", "properties": {"protocol": {"type": "string", "enum": protocols},
                                         "type": {"type": "string", "enum": types}},
        "required": ["protocol", "type"], "additionalProperties": False}},
        "required": ["remote_console"], "additionalProperties": False}


def action_schema(action: str) -> dict:
    return {"type": "object", "properties": {action: {
        "type": "object", "properties": {"type": {"type": "string",
                                                  "enum": ACTIONS[action][1]}},
        "required": ["type"], "additionalProperties": False}},
        "required": [action], "additionalProperties": False}


def proxy_url(req: Request, console_type: str, token: str) -> str:
    """The proxy on this cloud's own port, as the client reached the compute API."""
    parts = urlsplit(req.base_url)
    scheme = parts.scheme
    if console_type == "serial":  # a raw websocket, as Nova's serial proxy hands out
        scheme = "wss" if scheme == "https" else "ws"
    root = parts.path.rsplit("/", 1)[0]  # the compute API's mount prefix off
    return f"{scheme}://{parts.netloc}{root}{PROXY_PREFIX}/{console_type}?token={token}"


class RemoteConsoles:
    def __init__(self, service, helpers):
        self.service = service
        self.helpers = helpers
        self.conductor = service.conductor
        self.tokens = ConsoleTokens(service.db, service.conf)

    def url(self, req: Request, inst: dict, protocol: str, console_type: str) -> str:
        """A console of ``inst``: its proxy URL with a new token (Nova's checks and
        errors: 400 bad type or one the hypervisor lacks, 409 not ready)."""
        ctx = req.context
        self.service.policy.enforce(ctx, "os_compute_api:os-remote-consoles",
                                    {"project_id": inst["project_id"]})
        if protocol == "rdp":
            raise errors.BadRequest(f"Unavailable console type {protocol}.")
        if console_type not in TYPES[protocol]:
            raise errors.BadRequest(f"Invalid console type {console_type}")
        if inst["task_state"] in (states.DELETING, "migrating"):
            from pocketstack.compute.actions import conflict

            raise conflict(inst, f"get_{protocol}_console")
        if not inst["host"] or inst["vm_state"] != states.ACTIVE:
            raise errors.Conflict(f"Instance {inst['uuid']} is not ready")
        c = self.conductor
        try:
            connect = c.agents.call(context_dict(ctx), inst["host"], "get_console",
                                    instance=c.agent_view(inst), protocol=protocol)
        except rpc.RPCError as exc:
            if exc.kind == "ConsoleUnavailable":
                raise errors.BadRequest(f"Unavailable console type {console_type}.") from None
            if exc.kind == "InstanceNotFound":
                raise errors.Conflict(f"Instance {inst['uuid']} is not ready") from None
            raise
        token = self.tokens.issue(inst["uuid"], console_type, connect)
        return proxy_url(req, console_type, token)

    def action(self, req: Request, inst: dict, name: str, body: dict):
        """``os-getVNCConsole`` & co., which microversion 2.6 replaced."""
        if req.state["version"] >= (2, 6):
            raise errors.NotFound("The resource could not be found.")
        args = validate(action_schema(name), body)[name]
        protocol = ACTIONS[name][0]
        return JSONResponse({"console": {"type": args["type"],
                                         "url": self.url(req, inst, protocol, args["type"])}})


def register(api, service, helpers) -> None:
    consoles = service.remote_consoles = RemoteConsoles(service, helpers)

    @api.route("/v2.1/servers/{server_id}/remote-consoles", "POST")
    def remote_console_create(req: Request):
        version = req.state["version"]
        if version < (2, 6):
            raise errors.NotFound("The resource could not be found.")
        inst = helpers.instance(req)
        body = validate(create_schema(version), req.json())["remote_console"]
        url = consoles.url(req, inst, body["protocol"], body["type"])
        return {"remote_console": {"protocol": body["protocol"], "type": body["type"],
                                   "url": url}}

    @api.route("/v2.1/os-console-auth-tokens/{token}", "GET")
    def console_auth_token_show(req: Request):
        version = req.state["version"]
        if version < (2, 31):  # before 2.31 only rdp-html5 tokens, which are gone
            raise errors.BadRequest("The request you have made requires a microversion "
                                    "of 2.31 or later.")
        service.policy.enforce(req.context, "os_compute_api:os-console-auth-tokens")
        found = consoles.tokens.validate(req.path_params["token"])
        if found is None:
            raise errors.NotFound("Token not found")
        out = {"instance_uuid": found["instance_uuid"], "host": found["host"],
               "port": found["port"], "internal_access_path": found["internal_access_path"]}
        if version >= (2, 99) and found["console_type"] == "spice-direct":
            out["tls_port"] = None
        return {"console": out}
