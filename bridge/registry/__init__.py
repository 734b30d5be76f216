"""The device registry: devices, token hashes, permissions and expiry.

``Registry`` (``interface.py``) is what every backend implements: SQLite by default
(``sqlite.py``), PostgreSQL by URL (``postgres.py``), both on the SQL of ``sql.py``.
``open_registry`` picks one from a URL.
"""

from __future__ import annotations

from pathlib import Path

from bridge.errors import RegistryError
from bridge.registry.interface import (
    PERMISSIONS,
    Device,
    IssuedToken,
    Permission,
    Registry,
    TokenInfo,
)
from bridge.registry.sqlite import SQLiteRegistry

__all__ = ["PERMISSIONS", "Device", "IssuedToken", "Permission", "Registry", "TokenInfo",
           "open_registry"]


def open_registry(url: str) -> Registry:
    """The registry named by ``url`` (``DEVICEDATA_REGISTRY_URL``).

    ``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's spelling;
    the parent directory is created); ``postgresql://user[:password]@host[:port]/db``
    (libpq's URL, also spelled ``postgres://`` or ``postgresql+psycopg://``) for several
    instances sharing one registry.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"DEVICEDATA_REGISTRY_URL: expected sqlite:///path, got {url!r}")
        path = Path(rest[1:])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create {path.parent}: {exc}") from exc
        return SQLiteRegistry(path)
    if sep and (scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+")):
        try:
            from bridge.registry.postgres import PostgresRegistry
        except ImportError as exc:  # psycopg is an optional dependency (the postgres extra)
            raise RegistryError("a PostgreSQL registry needs psycopg: "
                                "pip install 'devicedata[postgres]'") from exc
        return PostgresRegistry(url)
    # Only the scheme is echoed: the rest of a URL may carry a password.
    shown = f"scheme {scheme!r}" if sep else "a value without a scheme"
    raise ValueError(f"DEVICEDATA_REGISTRY_URL: unsupported registry URL ({shown}); "
                     "expected sqlite:///path or postgresql://...")
