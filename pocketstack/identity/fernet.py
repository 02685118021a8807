"""The Fernet key repository, rotated as Keystone rotates it.

Key files are named by integers: ``0`` is the staged key (next primary),
the highest number is the primary key that signs new tokens, the rest are
secondary keys kept so that tokens they signed still validate.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, MultiFernet


class KeyRepository:
    def __init__(self, path: str, max_active_keys: int = 3):
        self.path = path
        self.max_active_keys = max(max_active_keys, 2)

    def _keys(self) -> dict[int, bytes]:
        keys = {}
        if not os.path.isdir(self.path):
            return keys
        for name in os.listdir(self.path):
            if name.isdigit():
                with open(os.path.join(self.path, name), "rb") as f:
                    keys[int(name)] = f.read().strip()
        return keys

    def _write(self, index: int, key: bytes) -> None:
        final = os.path.join(self.path, str(index))
        tmp = final + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    def setup(self) -> None:
        """Create the repository with a staged and a primary key if it is empty."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        if not self._keys():
            self._write(0, Fernet.generate_key())
            self.rotate()

    def rotate(self) -> int:
        """Promote the staged key to primary, stage a new key, drop the oldest
        secondaries beyond ``max_active_keys``. Returns the new primary index."""
        keys = self._keys()
        new_primary = max(keys) + 1 if keys else 1
        staged = keys.get(0) or Fernet.generate_key()
        self._write(new_primary, staged)
        self._write(0, Fernet.generate_key())
        keys = self._keys()
        for index in sorted(i for i in keys if i != 0)[: max(0, len(keys) - self.max_active_keys)]:
            os.remove(os.path.join(self.path, str(index)))
        return new_primary

    def fernet(self) -> MultiFernet:
        keys = self._keys()
        if not keys:
            raise RuntimeError(f"no Fernet keys in {self.path}")
        ordered = [keys[i] for i in sorted(keys, reverse=True) if i != 0] + [keys[0]]
        return MultiFernet([Fernet(k) for k in ordered])
