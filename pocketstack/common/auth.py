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
