"""``python -m pocketstack.rootwrap [daemon] <rootwrap.conf> [command ...]``.

The entry point sudo runs: oslo.rootwrap's one-shot mode (check one command
against the filters and run it) or its daemon mode (``daemon <conf>``).
"""

import sys


def main() -> None:
    from oslo_rootwrap import cmd

    args = sys.argv[1:]
    if args and args[0] == "daemon":
        # The daemon closes its standard streams once it serves; log records
        # (refused commands) go to syslog when the config asks for it, and
        # the caller logs every refusal on its side too.
        import logging

        logging.getLogger().addHandler(logging.NullHandler())
        logging.lastResort = None
        sys.argv = ["pocketstack-rootwrap-daemon", *args[1:]]
        cmd.daemon()
    else:
        sys.argv = ["pocketstack-rootwrap", *args]
        cmd.main()


if __name__ == "__main__":
    main()
