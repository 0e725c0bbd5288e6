"""Profile kinds: each profile is one `ProfileKind` (its name, description and count, how it is
taken and written, and how the OTLP push sends it), and `REGISTRY` holds them all. Adding a
profile is one new kind and one `REGISTRY.register(kind)`: every surface reads the registry.
"""

from .kind import BINARY, TEXT, ProfileKind, Push, Recording, Rendered, Timed, every_interval
from .registry import REGISTRY, Registry

__all__ = ["BINARY", "REGISTRY", "TEXT", "ProfileKind", "Push", "Recording", "Registry",
           "Rendered", "Timed", "every_interval"]
