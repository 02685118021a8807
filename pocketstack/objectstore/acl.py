"""Who may do what on an account or container (Swift's keystoneauth rules).

An account ``AUTH_<project_id>`` belongs to that project: its members with an
operator role own it, its readers may read it; the reseller admin role and
cloud admins reach every account. Containers open further through
``X-Container-Read`` / ``X-Container-Write``: ``<project>:<user>`` entries
(ids or names, ``*`` for any), ``.r:*`` (anyone may read objects, by
referrer) and ``.rlistings`` (... and list them).
"""

from __future__ import annotations

from pocketstack.common import errors
from pocketstack.common.context import RequestContext


def is_reseller(ctx: RequestContext | None, opts) -> bool:
    return ctx is not None and (ctx.is_admin or opts.reseller_admin_role in ctx.roles)


def account_role(ctx: RequestContext | None, account: str, opts) -> str | None:
    """"owner", "reader" or None for this caller on this account."""
    if ctx is None:
        return None
    if is_reseller(ctx, opts):
        return "owner"
    if ctx.project_id and account == f"AUTH_{ctx.project_id}":
        roles = set(ctx.roles)
        if roles.intersection(opts.operator_roles):
            return "owner"
        if roles.intersection(opts.reader_roles):
            return "reader"
    return None


def _entries(value: str | None) -> list[str]:
    return [e.strip() for e in (value or "").split(",") if e.strip()]


def clean(value: str, write: bool = False) -> str:
    """Validate an ACL header value (400 on nonsense), normalised."""
    out = []
    for entry in _entries(value):
        if entry.startswith("."):
            if write:
                raise errors.BadRequest(f"Referrers not allowed in write ACL: {entry!r}")
            kind, _, arg = entry.partition(":")
            if kind in (".r", ".ref", ".referer", ".referrer"):
                if not arg:
                    raise errors.BadRequest(f"No host/domain value after referrer "
                                            f"designation in ACL: {entry!r}")
                entry = ".r:" + arg
            elif kind != ".rlistings":
                raise errors.BadRequest(f"Unknown designator {kind!r} in ACL: {entry!r}")
        out.append(entry)
    return ",".join(out)


def _user_matches(entry: str, ctx: RequestContext | None) -> bool:
    if ctx is None:
        return False
    if entry == "*":
        return True
    project, sep, user = entry.partition(":")
    if not sep:
        return False
    return (project == "*" or project in (ctx.project_id, ctx.project_name)) and \
        (user == "*" or user in (ctx.user_id, ctx.user_name))


def _referrer_ok(arg: str, referer: str | None) -> bool:
    if arg == "*":
        return True
    if not referer:
        return False
    from urllib.parse import urlparse

    host = urlparse(referer).hostname or ""
    if arg.startswith("."):
        return host.endswith(arg)
    return host == arg


def allows_read(value: str | None, ctx: RequestContext | None, *, listing: bool,
                referer: str | None = None) -> bool:
    entries = _entries(value)
    referrer_ok = False
    for entry in entries:
        if entry.startswith(".r:"):
            arg = entry[3:]
            if arg.startswith("-"):
                if _referrer_ok(arg[1:], referer):
                    referrer_ok = False
                continue
            if _referrer_ok(arg, referer):
                referrer_ok = True
        elif not entry.startswith(".") and _user_matches(entry, ctx):
            return True
    if referrer_ok:
        return not listing or ".rlistings" in entries
    return False


def allows_write(value: str | None, ctx: RequestContext | None) -> bool:
    return any(_user_matches(e, ctx) for e in _entries(value) if not e.startswith("."))
