"""The abstract identity driver: a store of entities of a few kinds."""

from __future__ import annotations

import abc

# Which entity kinds (tables in models.py) each configurable area owns.
AREAS = {
    "identity": ["user", "group", "membership"],
    "resource": ["domain", "project"],
    "assignment": ["role", "implied_role", "assignment"],
    "catalog": ["region", "service", "endpoint"],
    # Always kept with the identity area's store when it can hold them, else sql.
    "credential": ["credential", "application_credential", "revocation_event"],
}


class Store(abc.ABC):
    """CRUD over entity kinds. Rows are plain dicts keyed by column name.

    ``filters`` map a column to a value, or to a list/tuple/set meaning "any of".
    Creating a row that breaks a unique key raises ``errors.Conflict``.
    """

    read_only = False
    # False for drivers whose data changes outside pocketstack (PAM, a template file).
    cacheable = True

    @abc.abstractmethod
    def create(self, kind: str, row: dict) -> dict: ...

    @abc.abstractmethod
    def get(self, kind: str, id: str) -> dict | None: ...

    @abc.abstractmethod
    def list(self, kind: str, filters: dict | None = None) -> list[dict]: ...

    @abc.abstractmethod
    def update(self, kind: str, id: str, changes: dict) -> dict | None: ...

    @abc.abstractmethod
    def delete(self, kind: str, filters: dict) -> int: ...

    def count(self, kind: str, filters: dict | None = None) -> int:
        return len(self.list(kind, filters))

    # Hooks for drivers that authenticate elsewhere (PAM).
    def authenticate(self, user: dict, password: str) -> bool | None:
        """True/False if this driver checks passwords itself, None to use the hash."""
        return None
