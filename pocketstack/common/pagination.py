"""limit / marker / sort_key / sort_dir handling shared by the list APIs.

Pages are cut with keyset pagination (the marker row's sort values), so a
page costs the same wherever it is in the collection.
"""

from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa

from pocketstack.common import errors


def parse_limit(query, *, default: int | None = None, maximum: int | None = None) -> int | None:
    raw = query.get("limit")
    if raw is None or raw == "":
        return default if maximum is None or default is None else min(default, maximum)
    try:
        limit = int(raw)
    except ValueError:
        raise errors.BadRequest(f"limit must be an integer, not '{raw}'.") from None
    if limit < 0:
        raise errors.BadRequest("limit must be a non-negative integer.")
    if maximum is not None:
        limit = min(limit, maximum)
    return limit


def parse_sort(query, allowed: set[str] | dict[str, str], default: list[tuple[str, str]],
               ) -> list[tuple[str, str]]:
    """Read repeated ``sort_key``/``sort_dir`` (or ``sort=key:dir,...``) parameters.

    ``allowed`` is the set of API keys, or a mapping API key -> column name.
    """
    keys = query.getlist("sort_key")
    dirs = query.getlist("sort_dir")
    if "sort" in query:
        for item in query.get("sort").split(","):
            key, _, direction = item.strip().partition(":")
            keys.append(key)
            dirs.append(direction or "asc")
    if not keys:
        if dirs:
            keys = [k for k, _ in default][: len(dirs)]
        else:
            return list(default)
    result = []
    for i, key in enumerate(keys):
        if key not in allowed:
            raise errors.BadRequest(f"Invalid sort key '{key}'.")
        direction = (dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "asc")).lower()
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort direction '{direction}'; "
                                    "expected 'asc' or 'desc'.")
        column = allowed[key] if isinstance(allowed, dict) else key
        result.append((column, direction))
    return result


def apply(stmt: sa.Select, model, sort: list[tuple[str, str]], *, limit: int | None = None,
          marker=None) -> sa.Select:
    """Order ``stmt`` by ``sort`` (plus id as tie-breaker) and cut the page after ``marker``.

    ``marker`` is the row (an ORM object) the previous page ended with.
    """
    if not any(col == "id" for col, _ in sort):
        sort = [*sort, ("id", sort[-1][1] if sort else "asc")]
    columns = [(getattr(model, col), direction) for col, direction in sort]
    order = []
    for column, direction in columns:
        if column.nullable:
            # NULLs first ascending, last descending, on every engine (PostgreSQL
            # would otherwise do the opposite of SQLite and MariaDB).
            is_null = sa.case((column.is_(None), 0), else_=1)
            order.append(is_null.desc() if direction == "desc" else is_null.asc())
        order.append(column.desc() if direction == "desc" else column.asc())
    stmt = stmt.order_by(*order)
    if marker is not None:
        criteria = []
        for i, (column, direction) in enumerate(columns):
            value = getattr(marker, column.key)
            equal = [columns[j][0] == getattr(marker, columns[j][0].key) for j in range(i)]
            if value is None:
                # NULLs sort first ascending on SQLite/MariaDB: everything non-null is after.
                after = column.is_not(None) if direction == "asc" else sa.false()
            else:
                after = column > value if direction == "asc" else column < value
                if direction == "desc":
                    after = sa.or_(after, column.is_(None))
            criteria.append(sa.and_(*equal, after))
        stmt = stmt.where(sa.or_(*criteria))
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


def next_href(url_base: str, query, marker: str) -> str:
    params = [(k, v) for k, v in query.multi_items() if k != "marker"]
    params.append(("marker", marker))
    return f"{url_base}?{urlencode(params)}"
