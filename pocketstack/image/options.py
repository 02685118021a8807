"""Image service options, with Glance's section and option names."""

from oslo_config import cfg

DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]


def register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts([
        cfg.StrOpt("default_store", default="file", choices=["file", "objectstore"],
                   help="Where image data is kept: 'file' (a directory) or 'objectstore' "
                        "(objects in this cloud's object storage)."),
        cfg.StrOpt("filesystem_store_datadir", default=None,
                   help="Directory of the file store; default state_path/images."),
        cfg.StrOpt("objectstore_container", default="glance",
                   help="Container (in the service project's account) holding image "
                        "objects when default_store is 'objectstore'."),
    ], group="glance_store")
    conf.register_opts([
        cfg.StrOpt("user_storage_quota", default="0",
                   help="Most bytes of image data a project may store (suffixes B, KB, MB, "
                        "GB, TB); 0 means unlimited."),
        cfg.IntOpt("image_count_quota", default=-1,
                   help="Most images a project may own; -1 means unlimited."),
        cfg.IntOpt("image_member_quota", default=128,
                   help="Most members an image may have; -1 means unlimited."),
        cfg.IntOpt("image_property_quota", default=128,
                   help="Most additional properties an image may have; -1 means unlimited."),
        cfg.IntOpt("image_tag_quota", default=128,
                   help="Most tags an image may have; -1 means unlimited."),
        cfg.IntOpt("image_size_cap", default=1099511627776, min=1,
                   help="Largest image accepted, in bytes."),
        cfg.IntOpt("limit_param_default", default=25, min=1,
                   help="Images a list returns when the request gives no limit."),
        cfg.IntOpt("api_limit_max", default=1000, min=1,
                   help="Most images a list returns, whatever limit the request gives."),
        cfg.StrOpt("hashing_algorithm", default="sha512",
                   choices=["sha512", "sha384", "sha256", "sha3_512", "blake2b"],
                   help="Algorithm of os_hash_value (md5 'checksum' is always computed). "
                        "sha256 is several times cheaper where the CPU has SHA extensions."),
        cfg.ListOpt("enabled_import_methods", default=["glance-direct"],
                    item_type=cfg.types.String(choices=["glance-direct", "web-download"]),
                    help="Interoperable image import methods offered. web-download makes "
                         "the server fetch a URL: enable it with [import_filtering_opts]."),
        cfg.StrOpt("node_staging_uri", default=None,
                   help="file:// URL of the staging area of image import; default "
                        "state_path/images-staging."),
    ])
    conf.register_opts([
        cfg.ListOpt("allowed_schemes", default=["http", "https"],
                    help="URL schemes web-download may fetch."),
        cfg.ListOpt("allowed_hosts", default=[],
                    help="Hosts web-download may fetch from; empty means any not disallowed."),
        cfg.ListOpt("disallowed_hosts", default=[],
                    help="Hosts web-download never fetches from."),
        cfg.ListOpt("allowed_ports", default=[80, 443], item_type=cfg.types.Integer(),
                    help="Ports web-download may connect to; empty means any."),
    ], group="import_filtering_opts")
