"""Block storage options, with Cinder's section and option names.

``[DEFAULT] enabled_backends`` names the backend sections; each backend
section carries ``volume_driver`` (file | nfs), ``volume_backend_name`` and
the driver's own options. Sections named ``file`` and ``nfs`` are registered
up front; any other backend name is registered when the service starts.
"""

from __future__ import annotations

from oslo_config import cfg

default_opts = [
    cfg.ListOpt("enabled_backends", default=["file"],
                help="Backend sections this volume service runs (one driver each)."),
    cfg.StrOpt("default_volume_type", default="__DEFAULT__",
               help="Volume type used when a request names none (created at start)."),
    cfg.StrOpt("storage_availability_zone", default="nova",
               help="Availability zone of the volume backends unless a backend sets "
                    "backend_availability_zone."),
    cfg.StrOpt("default_availability_zone", default=None,
               help="Zone of new volumes when the request names none; default "
                    "storage_availability_zone."),
    cfg.BoolOpt("allow_availability_zone_fallback", default=False,
                help="Use default_availability_zone when the requested zone does not exist."),
    cfg.IntOpt("quota_volumes", default=10, help="Volumes a project may have (-1: no limit)."),
    cfg.IntOpt("quota_snapshots", default=10, help="Snapshots a project may have."),
    cfg.IntOpt("quota_gigabytes", default=1000,
               help="GiB of volumes and snapshots a project may have."),
    cfg.IntOpt("quota_backups", default=10, help="Backups a project may have."),
    cfg.IntOpt("quota_backup_gigabytes", default=1000, help="GiB of backups a project may have."),
    cfg.IntOpt("per_volume_size_limit", default=-1, help="Largest volume in GiB (-1: none)."),
    cfg.IntOpt("volume_workers_pool", default=8,
               help="Threads that run driver work (create, copy, delete, backup)."),
    cfg.FloatOpt("volume_cleanup_interval", default=10.0,
                 help="Seconds between retries of removing files left by failed operations."),
    cfg.FloatOpt("backend_stats_polling_interval", default=10.0,
                 help="Seconds between capacity reports of the backends to the scheduler "
                      "(a pool that is down is re-checked every volume_cleanup_interval)."),
    cfg.StrOpt("backup_swift_container", default="volumebackups",
               help="Object storage container backups go to."),
    cfg.IntOpt("backup_swift_object_size", default=52428800,
               help="Bytes of volume data per backup object."),
    cfg.StrOpt("volume_image_conversion_dir", default=None,
               help="Scratch directory for image and backup conversions; "
                    "default state_path/volume-conversion."),
]

backend_opts = [
    cfg.StrOpt("volume_driver", default="file", choices=["file", "nfs"],
               help="Driver of this backend."),
    cfg.StrOpt("volume_backend_name", default=None,
               help="Name volume types select this backend by (extra spec "
                    "volume_backend_name); default the section name."),
    cfg.StrOpt("backend_availability_zone", default=None,
               help="Availability zone of this backend; default storage_availability_zone."),
    cfg.StrOpt("volume_clear", default="zero", choices=["none", "zero"],
               help="What happens to a deleted volume's bytes before its file is removed."),
    cfg.FloatOpt("max_over_subscription_ratio", default=20.0,
                 help="Provisioned GiB may reach this multiple of the backend's capacity."),
    cfg.IntOpt("reserved_percentage", default=0, min=0, max=100,
               help="Capacity kept free on the backend."),
    # file driver
    cfg.StrOpt("file_volumes_dir", default=None,
               help="Directory of the file driver's volumes; default state_path/volumes/<backend>."),
    cfg.BoolOpt("file_sparsed_volumes", default=True,
                help="Create raw volumes as sparse files (else allocate them fully)."),
    cfg.BoolOpt("file_qcow2_volumes", default=False, help="Create volumes as qcow2 files."),
    # nfs driver
    cfg.StrOpt("nfs_shares_config", default="/etc/cinder/nfs_shares",
               help="File listing the NFS shares, one 'host:/export [mount options]' a line."),
    cfg.StrOpt("nfs_mount_point_base", default=None,
               help="Where shares are mounted when the host has a kernel NFS client; "
                    "default state_path/mnt."),
    cfg.StrOpt("nfs_mount_options", default=None, help="Mount options for all shares."),
    cfg.BoolOpt("nfs_sparsed_volumes", default=True, help="Create raw volumes sparse."),
    cfg.BoolOpt("nfs_qcow2_volumes", default=False, help="Create volumes as qcow2 files."),
    cfg.BoolOpt("nfs_snapshot_support", default=True,
                help="Snapshots as qcow2 overlays on the share."),
    cfg.StrOpt("nfs_client", default="auto", choices=["auto", "mount", "libnfs"],
               help="How shares are reached: a kernel mount, user-space libnfs (nfs:// "
                    "URLs), or auto (a mount when the host has kernel NFS, else libnfs)."),
    cfg.FloatOpt("nfs_timeout", default=60.0,
                 help="Seconds an NFS operation may take before it is abandoned "
                      "(copies get this per GiB more)."),
]

BACKEND_GROUPS = ("file", "nfs")


def register_backend(conf: cfg.ConfigOpts, name: str) -> None:
    if name not in conf:
        conf.register_opts(backend_opts, group=name)
    elif "volume_driver" not in conf[name]:
        conf.register_opts(backend_opts, group=name)


def register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(default_opts)
    for name in BACKEND_GROUPS:
        conf.register_opts(backend_opts, group=name)
    # the nfs section defaults to the nfs driver; its deleted volumes' files are
    # removed (zeroing a sparse file over NFS writes every byte of it)
    conf.set_default("volume_driver", "nfs", group="nfs")
    conf.set_default("volume_clear", "none", group="nfs")
