"""Helpers the bench scripts share."""

from __future__ import annotations

import fcntl
import os

PIPE_SIZE = 1 << 20


def splice_body(sock_fd: int, length: int, sink_fd: int) -> int:
    """Move ``length`` bytes of a response body from a socket to ``sink_fd`` (a file,
    or /dev/null) through a pipe, in the kernel: a bench client then costs as little
    as `cp` does, as sendfile makes its uploads cheap. Returns the bytes moved."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    got = 0
    try:
        while got < length:
            n = os.splice(sock_fd, w, min(PIPE_SIZE, length - got))
            if not n:
                break
            got += n
            while n:
                n -= os.splice(r, sink_fd, n)
    finally:
        os.close(r)
        os.close(w)
    return got
