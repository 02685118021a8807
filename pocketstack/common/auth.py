"""Token validation for every service's API, with a cache.

In one process the validator calls identity directly; each validated token is
cached until it expires or ``cache_time`` passes, and the whole cache is
dropped when identity's generation changes (a revocation, a role change).
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from pocketstack.common import errors
from pocketstack.common.context import RequestContext


class TokenValidator:
    def __init__(self, validate: Callable[[str], RequestContext],
                 generation: Callable[[], int], *, cache_time: int = 300,
                 max_entries: int = 20000, www_authenticate: str | None = None):
        self._validate = validate
        self._generation = generation
        self.cache_time = cache_time
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[RequestContext, float, int]] = OrderedDict()
        self.www_authenticate = www_authenticate

    def unauthorized(self) -> errors.Unauthorized:
        headers = {"WWW-Authenticate": f'Keystone uri="{self.www_authenticate}"'} \
            if self.www_authenticate else {}
        return errors.Unauthorized(headers=headers)

    def cached(self, token: str) -> RequestContext | None:
        entry = self._cache.get(token)
        if entry is None:
            return None
        ctx, deadline, generation = entry
        if generation != self._generation() or time.monotonic() > deadline:
            self._cache.pop(token, None)
            return None
        return ctx

    def validate(self, token: str) -> RequestContext:
        """Validate without the cache's fast path (may touch the database)."""
        generation = self._generation()
        ctx = self._validate(token)
        expires = _seconds_left(ctx.expires_at)
        deadline = time.monotonic() + min(self.cache_time, expires)
        self._cache[token] = (ctx, deadline, generation)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return ctx

    async def __call__(self, req, required: bool = True) -> RequestContext | None:
        token = req.headers.get("x-auth-token")
        if not token:
            if required:
                raise self.unauthorized()
            return None
        ctx = self.cached(token)
        if ctx is None:
            try:
                ctx = await run_in_threadpool(self.validate, token)
            except errors.Unauthorized:
                raise self.unauthorized() from None
        return dataclasses.replace(ctx, request_id=req.request_id)


def _seconds_left(expires_at: str | None) -> float:
    if not expires_at:
        return 0.0
    import datetime

    when = datetime.datetime.strptime(expires_at.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S")
    return when.replace(tzinfo=datetime.UTC).timestamp() - time.time()


class RemoteTokenValidator(TokenValidator):
    """Validates tokens over HTTP for a service run apart from identity.

    It authenticates as a service user (``[keystone_authtoken]``), then asks
    identity ``GET /v3/auth/tokens`` about each token it has not cached. Cached
    tokens stay valid until they expire or ``cache_time`` passes (as with
    keystonemiddleware, a revocation is seen once the cache entry ends).
    """

    def __init__(self, conf, *, cache_time: int | None = None, client=None):
        opts = conf.keystone_authtoken
        if not opts.auth_url:
            raise ValueError("[keystone_authtoken] auth_url is required to validate tokens "
                             "when identity runs elsewhere")
        self.conf = opts
        self.auth_url = opts.auth_url.rstrip("/")
        super().__init__(self._remote_validate, lambda: 0,
                         cache_time=conf.token.cache_time if cache_time is None else cache_time,
                         www_authenticate=opts.www_authenticate_uri or self.auth_url)
        import threading

        import httpx

        self._http = client or httpx.Client(timeout=opts.http_connect_timeout,
                                            verify=not opts.insecure)
        self._service_token: str | None = None
        self._service_expires = 0.0
        self._lock = threading.Lock()

    def _service_auth(self, force: bool = False) -> str:
        with self._lock:
            if not force and self._service_token and time.time() < self._service_expires - 30:
                return self._service_token
            o = self.conf
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": o.username, "password": o.password,
                "domain": {"name": o.user_domain_name}}}}}}
            if o.project_name:
                body["auth"]["scope"] = {"project": {"name": o.project_name, "domain": {
                    "name": o.project_domain_name}}}
            try:
                r = self._http.post(self.auth_url + "/v3/auth/tokens", json=body,
                                    params={"nocatalog": "1"})
            except Exception as exc:  # noqa: BLE001 - any transport failure
                raise errors.ServiceUnavailable(
                    f"The identity service cannot be reached: {exc.__class__.__name__}.") from None
            if r.status_code != 201:
                raise errors.ServiceUnavailable("The service could not authenticate to the "
                                                f"identity service ({r.status_code}).")
            self._service_token = r.headers["X-Subject-Token"]
            self._service_expires = time.time() + _seconds_left(r.json()["token"]["expires_at"])
            return self._service_token

    def _remote_validate(self, token: str) -> RequestContext:
        for attempt in range(2):
            service_token = self._service_auth(force=attempt > 0)
            try:
                r = self._http.get(self.auth_url + "/v3/auth/tokens",
                                   headers={"X-Auth-Token": service_token,
                                            "X-Subject-Token": token},
                                   params={"nocatalog": "1"})
            except Exception as exc:  # noqa: BLE001
                raise errors.ServiceUnavailable(
                    f"The identity service cannot be reached: {exc.__class__.__name__}.") from None
            if r.status_code == 200:
                return context_from_token(r.json()["token"], token)
            if r.status_code == 404:
                raise errors.Unauthorized()
            if r.status_code not in (401, 403) or attempt:
                raise errors.ServiceUnavailable(
                    f"Token validation failed at the identity service ({r.status_code}).")
        raise errors.Unauthorized()  # pragma: no cover


def context_from_token(body: dict, token: str | None = None) -> RequestContext:
    """A RequestContext from the ``token`` object of an Identity v3 response."""
    user = body.get("user") or {}
    user_domain = user.get("domain") or {}
    ctx = RequestContext(user_id=user.get("id"), user_name=user.get("name"),
                         user_domain_id=user_domain.get("id"),
                         user_domain_name=user_domain.get("name"), auth_token=token,
                         audit_id=(body.get("audit_ids") or [None])[0],
                         expires_at=body.get("expires_at"), methods=body.get("methods") or [],
                         application_credential_id=(body.get("application_credential")
                                                    or {}).get("id"))
    if body.get("project"):
        project = body["project"]
        ctx.project_id, ctx.project_name = project.get("id"), project.get("name")
        domain = project.get("domain") or {}
        ctx.project_domain_id, ctx.project_domain_name = domain.get("id"), domain.get("name")
    elif body.get("domain"):
        ctx.domain_id, ctx.domain_name = body["domain"].get("id"), body["domain"].get("name")
    elif body.get("system"):
        ctx.system_scope = "all" if body["system"].get("all") else None
    roles = body.get("roles") or []
    ctx.roles = sorted(r["name"] for r in roles)
    ctx.role_refs = [{"id": r.get("id"), "name": r["name"]} for r in roles]
    return ctx


def validator_for(cloud) -> TokenValidator:
    """The validator a service should use: identity's own when it runs in this process,
    else one that asks identity over HTTP (built once per cloud)."""
    identity = getattr(cloud, "services", {}).get("identity")
    if identity is not None:
        return identity.validator
    remote = cloud.__dict__.get("_remote_validator")
    if remote is None:
        remote = cloud.__dict__["_remote_validator"] = RemoteTokenValidator(cloud.conf)
    return remote
