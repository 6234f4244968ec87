"""Atomic file writes: a file is written under a temporary name, then renamed into place.

A kill at any moment leaves either the old file or the new one, never a torn one.
With ``durable``, the data and the rename are also flushed to disk (fsync).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_COMPOUND_SUFFIXES = (".weights.h5",)


def temporary_name(path: Path) -> Path:
    """``path`` with ``.tmp`` before its suffix (Keras and h5py need the real suffix)."""
    suffix = next((s for s in _COMPOUND_SUFFIXES if path.name.endswith(s)), path.suffix)
    stem = path.name[: -len(suffix)] if suffix else path.name
    return path.with_name(f"{stem}.tmp{suffix}")


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_into_place(temporary: Path, path: Path, durable: bool = False) -> None:
    """Rename a finished temporary file onto ``path``."""
    if durable:
        fsync_path(temporary)
    os.replace(temporary, path)
    if durable:
        fsync_path(path.parent)


def atomic_write(path: Path, write: Callable[[Path], object], durable: bool = False) -> Path:
    """Call ``write(temporary)``, then rename the temporary file onto ``path``."""
    path = Path(path)
    temporary = temporary_name(path)
    write(temporary)
    replace_into_place(temporary, path, durable)
    return path


def atomic_write_text(path: Path, text: str, durable: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda temporary: temporary.write_text(text), durable)
