"""A profiled file's lines for the source view (`list`). The caller has checked that the
profile names the file; this only bounds what is read."""

from __future__ import annotations

import os

from ..errors import RequestError

MAX_SOURCE = 4 << 20


def read_lines(filename: str) -> list[str]:
    try:
        if not os.path.isfile(filename):
            raise RequestError("not_found", "the file is not on this machine's disk")
        with open(filename, "rb") as f:
            data = f.read(MAX_SOURCE + 1)
    except OSError:
        raise RequestError("not_found", "the file cannot be read") from None
    if len(data) > MAX_SOURCE:
        raise RequestError("invalid", f"the file is over {MAX_SOURCE} bytes")
    return data.decode("utf-8", "replace").splitlines()
