"""`cmdline` (the program's argv, NUL-separated, as Go's os.Args) and `symbol` (the functions at
the synthetic addresses of the legacy text profiles; only the HTTP listener answers it, since it
reads a GET query or a POST body)."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from ..encode import text
from .kind import TEXT, ProfileKind, Rendered

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

# the "+"-separated words that could be numbers; int(word, 0) decides
_NUMBERS = re.compile(rb"(?<![^+])[0-9][0-9a-zA-Z_]{0,40}(?![^+])")


def _cmdline(core: ProfilingCore) -> Rendered:
    return Rendered(TEXT, None, "\x00".join(sys.argv).encode())


def symbol(core: ProfilingCore, query: bytes) -> Rendered:
    """Go's /symbol: `num_symbols: 1`, then `0x<addr> <function>` for each known address."""
    lines = ["num_symbols: 1\n"]
    for piece in _NUMBERS.findall(query):  # one C scan: 1 MiB of junk stays cheap
        try:
            addr = int(piece.decode("ascii"), 0)
        except (ValueError, UnicodeDecodeError):
            continue
        name = text.lookup(core.symbols, addr) if 0 < addr < 1 << 64 else None
        if name is not None:
            lines.append(f"{addr:#x} {name}\n")
    return Rendered(TEXT, None, "".join(lines).encode())


CMDLINE = ProfileKind("cmdline", "The command line of the current program.", write=_cmdline)

SYMBOL = ProfileKind(
    "symbol",
    "Maps the addresses of the legacy text profiles (debug=1) to function names. GET with a "
    "query of +-separated addresses, or POST them in the body.",
    lookup=symbol,
)
