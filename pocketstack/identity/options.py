"""Identity options, with Keystone's section and option names."""

from oslo_config import cfg


def register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts([
        cfg.StrOpt("driver", default="sql", choices=["sql", "kvs", "pam"],
                   help="Where users and groups live."),
        cfg.StrOpt("default_domain_id", default="default"),
        cfg.IntOpt("password_hash_rounds", default=12, min=4, max=31,
                   help="bcrypt cost (Keystone's default: 12)."),
        cfg.IntOpt("max_password_length", default=4096),
        cfg.IntOpt("list_limit", default=None, help="Most entities a list returns."),
        cfg.IntOpt("cache_time", default=60, min=0,
                   help="Seconds identity keeps what it read from its drivers (writes made "
                        "through this process drop it at once; this bounds how long a write "
                        "made by another process can go unseen). 0 disables the cache."),
    ], group="identity")
    conf.register_opts([
        cfg.StrOpt("driver", default="sql", choices=["sql", "kvs"],
                   help="Where domains and projects live."),
    ], group="resource")
    conf.register_opts([
        cfg.StrOpt("driver", default="sql", choices=["sql", "kvs"],
                   help="Where roles and role assignments live."),
    ], group="assignment")
    conf.register_opts([
        cfg.StrOpt("driver", default="sql", choices=["sql", "templated"],
                   help="Where the service catalog lives."),
        cfg.StrOpt("template_file", default="default_catalog.templates",
                   help="Catalog template (Keystone format) for the templated driver; "
                        "relative paths are under state_path."),
    ], group="catalog")
    conf.register_opts([
        cfg.IntOpt("expiration", default=3600, help="Token lifetime in seconds."),
        cfg.IntOpt("cache_time", default=300,
                   help="Seconds a validated token is cached by the services."),
        cfg.BoolOpt("allow_rescope_scoped_token", default=True),
    ], group="token")
    conf.register_opts([
        cfg.StrOpt("key_repository", default=None,
                   help="Fernet keys directory; default state_path/fernet-keys."),
        cfg.IntOpt("max_active_keys", default=3, min=1),
    ], group="fernet_tokens")
    conf.register_opts([
        cfg.StrOpt("auth_url", default=None,
                   help="Identity endpoint (e.g. http://host:8780/identity) a service run "
                        "apart from identity validates tokens with."),
        cfg.StrOpt("www_authenticate_uri", default=None,
                   help="Identity URL told to clients in WWW-Authenticate; default auth_url."),
        cfg.StrOpt("username", default="pocketstack", help="Service user name."),
        cfg.StrOpt("password", default=None, secret=True, help="Service user password."),
        cfg.StrOpt("project_name", default="service", help="Project of the service user."),
        cfg.StrOpt("user_domain_name", default="Default"),
        cfg.StrOpt("project_domain_name", default="Default"),
        cfg.FloatOpt("http_connect_timeout", default=10.0,
                     help="Seconds to wait for the identity service."),
        cfg.BoolOpt("insecure", default=False, help="Skip TLS certificate checks."),
    ], group="keystone_authtoken")
    conf.register_opts([
        cfg.StrOpt("service", default="login", help="PAM service used to authenticate."),
        cfg.StrOpt("admin_user", default="root", help="System account given the admin role."),
    ], group="pam")
