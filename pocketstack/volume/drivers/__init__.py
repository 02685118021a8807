"""Volume drivers, chosen per backend by ``volume_driver``."""

from __future__ import annotations


def load(backend: str, options, conf):
    if options.volume_driver == "nfs":
        from pocketstack.volume.drivers.nfs import NfsDriver

        return NfsDriver(backend, options, conf)
    from pocketstack.volume.drivers.file import FileDriver

    return FileDriver(backend, options, conf)
