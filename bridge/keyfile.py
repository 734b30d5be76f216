"""Secrets generated once and kept in a file of the data dir (mode 0600): the bridge's
broker password and the admin token. Safe when several processes start at once."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def read_or_create(path: Path, nbytes: int = 32) -> str:
    """The secret in ``path``, generating it (``nbytes`` random bytes, url-safe) first if
    the file is missing or empty."""
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(nbytes) + "\n")
        try:
            # link() fails if another process got there first; then its secret is the one,
            os.link(tmp, path)
        except FileExistsError:
            # unless that file is empty (a crash mid-write, or an operator clearing it).
            if not path.read_text(encoding="utf-8").strip():
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path.read_text(encoding="utf-8").strip()
