"""A validation's report stored in a network set's metadata (read back by ClassNet)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from cosmicnet_cobaya.networks.network_set import METADATA_FILE, read_metadata

logger = logging.getLogger(__name__)


def record_accuracy(directory: Path, report: dict[str, Any], key: str | None = None) -> None:
    """Store ``report`` under ``provenance.accuracy[key]`` of the set in ``directory``.

    ``key`` defaults to the report's non-linear mode (CMB reports); the
    matter-power report goes under ``matter``.
    """
    metadata = read_metadata(directory)
    accuracy = dict(metadata.provenance.get("accuracy", {}))
    accuracy[key or report["settings"]["non_linear"]] = report
    replace(metadata, provenance={**metadata.provenance, "accuracy": accuracy}).write(directory)
    logger.info("recorded the measured accuracy in %s", directory / METADATA_FILE)
