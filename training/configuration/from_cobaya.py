"""A family config seeded from a cobaya-run input file.

Priors of the ``params`` block become the box, numeric fixed values and the
classy theory's ``extra_args`` become fixed CLASS settings; parameters that do
not enter the sources are left out.  The result is a mapping to edit and save.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmicnet_cobaya.networks.accuracy import L_MAX
from training.configuration.family import (
    DAMPING_KEY,
    DEFAULT_TARGETS,
    ConfigError,
    classify_params,
    read_yaml,
)

logger = logging.getLogger(__name__)

_SEED_OUTPUT = "tCl,pCl,lCl,mPk"
_THEORY_NAMES = ("classy", "cosmicnet_cobaya.ClassNet", "cosmicnet_cobaya.classnet.ClassNet")


def _cobaya_extra_args(info: Mapping[str, Any]) -> dict[str, Any]:
    theory = info.get("theory") or {}
    for name in _THEORY_NAMES:
        if name in theory:
            return dict((theory[name] or {}).get("extra_args") or {})
    raise ConfigError(f"the cobaya input has no classy theory (looked for {list(_THEORY_NAMES)})")


def _class_reads(name: str, value: float, settings: Mapping[str, Any]) -> bool:
    """True when CLASS's input module accepts ``name`` (cheap: input level only)."""
    from cosmicnet_cobaya.hook.bridge import classy

    cosmo = classy.Class()
    try:
        cosmo.set({**settings, name: value})
        cosmo.compute(level=["input"])
    except classy.CosmoSevereError as error:
        return name not in str(error)
    except classy.CosmoComputationError:
        return True
    finally:
        cosmo.struct_cleanup()
        cosmo.empty()
    return True


def family_from_cobaya(
    info: Mapping[str, Any] | str | Path,
    family: str = "from_cobaya",
    box_sigma: float = 5.0,
    check_with_class: bool = True,
) -> dict[str, Any]:
    """A family mapping seeded from a cobaya-run input (a mapping or a YAML path).

    Priors of the ``params`` block become the box (a Gaussian prior gives
    loc +- ``box_sigma`` scale), numeric fixed values and the classy theory's
    ``extra_args`` become fixed CLASS settings.  Parameters that do not enter
    the sources (primordial ones in ``NON_SOURCE_PARAMS``, derived and
    dependent ones, likelihood nuisance parameters, i.e. those CLASS's input
    module does not read when ``check_with_class``) are left out.  The rest
    (l_max, targets, paper-sized sets) takes the defaults; edit the result.
    """
    if not isinstance(info, Mapping):
        info = read_yaml(info)
    extra_args = _cobaya_extra_args(info)
    parsed = classify_params(info.get("params") or {}, box_sigma, strict=False)
    output = {t.strip() for t in str(extra_args.get("output", "")).split(",") if t.strip()}
    extra_args["output"] = ",".join(sorted(output | set(_SEED_OUTPUT.split(","))))
    extra_args.setdefault("lensing", "yes")
    extra_args[DAMPING_KEY] = "yes"
    fixed = dict(parsed.fixed)
    varied = list(parsed.varied)
    dropped = dict(parsed.dropped)
    if check_with_class:
        base = {**extra_args, **fixed, **{p.name: p.centre for p in varied}}
        for entry in list(varied):
            if not _class_reads(entry.name, entry.centre, base):
                varied.remove(entry)
                dropped[entry.name] = "not a CLASS parameter (likelihood nuisance?)"
        for name in list(fixed):
            if not _class_reads(name, fixed[name], base):
                del fixed[name]
                dropped[name] = "not a CLASS parameter (likelihood nuisance?)"
    for name, reason in dropped.items():
        logger.info("cobaya parameter %s left out: %s", name, reason)
    if not varied:
        raise ConfigError("the cobaya input varies no parameter that enters the sources")
    return {
        "family": family,
        "description": "seeded from a cobaya-run input",
        "params": {p.name: {"prior": {"min": p.low, "max": p.high}} for p in varied},
        "extra_args": {**extra_args, **fixed},
        "l_max": L_MAX,
        "targets": list(DEFAULT_TARGETS),
        "sets": {
            "training": {"size": 10000, "seed": 1},
            "validation": {"size": 2000, "seed": 2},
            "selection": {"size": 100, "seed": 3},
            "test": {"size": 100, "seed": 4},
        },
    }
