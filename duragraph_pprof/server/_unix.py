"""Unix-domain socket files, the same way for every listener: a live socket is never taken over,
a stale one is replaced, and the file is made 0600 (only this user can connect)."""

from __future__ import annotations

import errno
import os
import socket
import stat


def clear_stale(path: str) -> None:
    """Remove a socket file nobody listens on any more. A live one (another process serving it)
    is refused with EADDRINUSE rather than silently taken over (gRPC would unlink it)."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except OSError:
            return
    raise OSError(errno.EADDRINUSE, f"{path} is served by another process")


def restrict(path: str) -> None:
    """Owner-only, set right after the bind; changing the process umask instead would also
    affect files the application creates on other threads meanwhile."""
    os.chmod(path, 0o600)
