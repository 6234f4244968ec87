"""The network sets shipped with the package, found by name, or chosen by the settings.

Each folder of ``cosmicnet_cobaya/data/networks`` holding a ``metadata.json`` is
a shipped set named after the folder.  ``networks:`` in ClassNet's options takes
such a name or the folder of any set; with ``networks: null`` the shipped set
whose fixed CLASS settings agree with the theory's ``extra_args`` is used,
unless it is experimental (``provenance.experimental`` says why): such a set
serves only where named.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmicnet_cobaya.networks.domain import domain_violations
from cosmicnet_cobaya.networks.network_set import (
    METADATA_FILE,
    NetworkSetError,
    NetworkSetMetadata,
    read_metadata,
)

SHIPPED_ROOT = Path(__file__).resolve().parents[1] / "data" / "networks"
DEFAULT_SET = "lcdm"
"""Used when no shipped set agrees with the settings (its points then fall back to CLASS)."""


def shipped_sets(root: Path | None = None) -> dict[str, Path]:
    """Name -> folder of every shipped set under ``root`` (the package's), the default first."""
    root = SHIPPED_ROOT if root is None else root
    found = sorted(path.parent for path in root.glob(f"*/{METADATA_FILE}"))
    ordered = sorted(found, key=lambda path: path.name != DEFAULT_SET)
    return {path.name: path for path in ordered}


def resolve_network_set(option: str | Path, root: Path | None = None) -> Path:
    """The folder meant by ``networks: OPTION``: a shipped set's name, else a path."""
    shipped = shipped_sets(root)
    if str(option) in shipped:
        return shipped[str(option)]
    path = Path(option).expanduser()
    if not (path / METADATA_FILE).is_file():
        raise NetworkSetError(
            f"networks: {option!r} is neither a shipped set ({', '.join(shipped) or 'none'}) "
            f"nor a folder holding {METADATA_FILE}: name a shipped set, or train one with "
            "`cosmicnet train CONFIG --data DIR --out NETDIR`"
        )
    return path


def setting_mismatches(metadata: NetworkSetMetadata, extra_args: Mapping[str, Any]) -> list[str]:
    """How ``extra_args`` disagree with the fixed CLASS settings a set was trained with.

    A trained setting the arguments leave unset counts, unless the set varies it.
    The varied parameters sit at the centre of their ranges, so only settings count.
    """
    trained = metadata.provenance.get("class_precision", {})
    varied = {name: (low + high) / 2 for name, (low, high) in metadata.domain.items()}
    settings = {**varied, **extra_args}
    return domain_violations(metadata.domain, trained, varied, settings)


def choose_shipped_set(
    extra_args: Mapping[str, Any], root: Path | None = None
) -> tuple[str, Path, dict[str, list[str]]]:
    """The shipped set for these settings: name, folder, and why each other set was not taken.

    The first set (the default first) whose trained settings agree with
    ``extra_args`` and that is not experimental; the default set when none is.
    """
    shipped = shipped_sets(root)
    if not shipped:
        raise NetworkSetError(
            f"no network set is shipped under {root or SHIPPED_ROOT}: reinstall the package, "
            "or set `networks:` to the folder of a trained set"
        )
    rejected: dict[str, list[str]] = {}
    for name, path in shipped.items():
        metadata = read_metadata(path)
        reasons = setting_mismatches(metadata, extra_args)
        experimental = metadata.provenance.get("experimental")
        if experimental and not reasons:
            reasons = [f"experimental ({experimental}); name it to use it: networks: {name}"]
        if not reasons:
            return name, path, rejected
        rejected[name] = reasons
    default = DEFAULT_SET if DEFAULT_SET in shipped else next(iter(shipped))
    return default, shipped[default], rejected
