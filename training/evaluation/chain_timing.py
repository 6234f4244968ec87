"""Wall time of a short Cobaya MCMC per accepted step, for the speed benchmark.

The same cobaya-run YAML (say ``configs/mcmc_classnet.yaml`` and
``configs/mcmc_classy.yaml``) runs with its own seed and covariance, no
output, and stops after a fixed number of accepted steps. The wall time
includes Cobaya's start (loading the theory, measuring speeds), which each
chain pays once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from cobaya.run import run
from cobaya.yaml import yaml_load_file

log = logging.getLogger(__name__)


def chain_input(config: Path, accepted: int, packages_path: Path | None) -> dict[str, Any]:
    """The config's input, stopping after ``accepted`` steps, without output files."""
    info = yaml_load_file(str(config))
    info["output"] = None
    if packages_path is not None:
        info["packages_path"] = str(packages_path)
    mcmc = info.get("sampler", {}).get("mcmc")
    if mcmc is None:
        raise ValueError(f"{config}: the chain benchmark needs a `sampler: mcmc` block")
    mcmc["max_samples"] = accepted
    covmat = mcmc.get("covmat")
    if covmat and not Path(covmat).is_absolute():
        # Relative to the repository root, as the configs say to run them from there.
        candidate = config.resolve().parent.parent / covmat
        mcmc["covmat"] = str(candidate if candidate.is_file() else Path(covmat).resolve())
    return info


def time_chain(config: Path, accepted: int, packages_path: Path | None) -> dict[str, Any]:
    """Run the config's MCMC to ``accepted`` accepted steps; wall time per accepted step."""
    info = chain_input(config, accepted, packages_path)
    log.info("Chain benchmark: %s to %d accepted steps", config, accepted)
    start = time.perf_counter()
    _, sampler = run(info)
    wall = time.perf_counter() - start
    count = len(sampler.products()["sample"])
    return {
        "config": config.name,
        "accepted": count,
        "wall_s": wall,
        "s_per_accepted": wall / max(count, 1),
    }
