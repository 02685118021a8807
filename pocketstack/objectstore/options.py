"""Object storage options ([objectstore]); Swift's names where the concept is the same."""

from oslo_config import cfg


def register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts([
        cfg.StrOpt("root", default=None,
                   help="Directory holding the objects; default state_path/objects."),
        cfg.IntOpt("max_file_size", default=5 * 1024 ** 3,
                   help="Largest single object (bytes); bigger ones are SLO/DLO."),
        cfg.IntOpt("max_meta_name_length", default=128),
        cfg.IntOpt("max_meta_value_length", default=256),
        cfg.IntOpt("max_meta_count", default=90),
        cfg.IntOpt("max_meta_overall_size", default=2048,
                   help="Total bytes of an entity's metadata names and values. Object "
                        "metadata lives in one extended attribute (4 KiB on ext4), "
                        "hence less than Swift's 4096."),
        cfg.IntOpt("container_listing_limit", default=10000),
        cfg.IntOpt("account_listing_limit", default=10000),
        cfg.IntOpt("max_manifest_segments", default=1000),
        cfg.IntOpt("max_manifest_size", default=8 * 1024 * 1024),
        cfg.IntOpt("max_deletes_per_request", default=10000),
        cfg.IntOpt("dlo_max_segments", default=10000),
        cfg.IntOpt("chunk_size", default=1024 * 1024,
                   help="Bytes read or written per disk operation when streaming."),
        cfg.ListOpt("tempurl_methods", default=["GET", "HEAD", "PUT", "POST", "DELETE"],
                    help="Methods a TempURL may allow."),
        cfg.ListOpt("tempurl_digests", default=["sha1", "sha256", "sha512"]),
        cfg.ListOpt("operator_roles", default=["admin", "member", "swiftoperator"],
                    help="Roles on a project that own its account."),
        cfg.ListOpt("reader_roles", default=["reader"],
                    help="Roles on a project that may read its account."),
        cfg.StrOpt("reseller_admin_role", default="ResellerAdmin",
                   help="Role that reaches every account and may set account quotas."),
        cfg.IntOpt("expirer_interval", default=30,
                   help="Seconds between sweeps deleting objects past X-Delete-At."),
        cfg.IntOpt("io_threads", default=32,
                   help="Threads doing blocking file work (writes, fsyncs, big reads)."),
        cfg.BoolOpt("direct_io", default=False,
                    help="Keep big objects out of the page cache, as Swift does: write "
                         "them with O_DIRECT and drop them from the cache as they are "
                         "read. Uploads then cost the kernel no copy or writeback, but "
                         "every read of a big object comes from the disk: for a store "
                         "whose objects are rarely read back. Off (the default): objects "
                         "are written through the page cache (writeback started as they "
                         "arrive, fsync'd before the PUT is acknowledged) and recently "
                         "written ones are read from memory."),
        cfg.BoolOpt("fsync", default=True,
                    help="fsync data and directories before acknowledging a write."),
    ], group="objectstore")
