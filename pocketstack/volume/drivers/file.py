"""The file driver: volumes are sparse raw (or qcow2) files in a local directory."""

from __future__ import annotations

import os

from pocketstack.volume.drivers.base import Driver, real_path
from pocketstack.volume.drivers.shares import LocalShare


class FileDriver(Driver):
    protocol = "file"

    def setup(self) -> None:
        opts = self.options
        path = real_path(opts.file_volumes_dir or os.path.join("volumes", self.backend),
                         self.conf.state_path)
        self.qcow2 = opts.file_qcow2_volumes
        self.sparse = opts.file_sparsed_volumes
        self.shares = {path: LocalShare(path, name=path)}
