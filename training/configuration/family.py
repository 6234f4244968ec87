"""Network-family configuration: YAML in Cobaya's input style, parsed into dataclasses.

A family config names the varied parameters and their box (a ``params`` block
in Cobaya's syntax), the fixed CLASS settings (``extra_args`` exactly as for
Cobaya's ``classy`` theory), the highest multipole served, the source
functions to emulate, the k-grid and storage options, and the generated sets.
Everything is checked here, before any CLASS call.  The top-level key
``networks`` is reserved for network settings and passed through unvalidated.

``training.configuration.from_cobaya`` seeds a family from a cobaya-run input file.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.networks.accuracy import L_MAX
from cosmicnet_cobaya.networks.domain import LinearConstraint
from training.configuration.keys import check_keys

logger = logging.getLogger(__name__)

KNOWN_TARGETS: tuple[str, ...] = ("t0", "t1", "t2", "p", "phi_plus_psi", "delta_m", "delta_cb")
"""Source functions a family can store (CLASS names)."""

DEFAULT_TARGETS: tuple[str, ...] = ("t0", "t1", "t2", "phi_plus_psi", "delta_m", "delta_cb")

NON_SOURCE_PARAMS: frozenset[str] = frozenset(
    {
        # primordial spectrum: the sources are normalised to R = 1 and do not see it
        "A_s",
        "As",
        "logA",
        "ln10^{10}A_s",
        "ln_A_s_1e10",
        "n_s",
        "ns",
        "alpha_s",
        "nrun",
        "n_run",
        "beta_s",
        "nrunrun",
        "r",
        "r_0002",
        "n_t",
        "nt",
        "alpha_t",
        "k_pivot",
        "sigma8",
        "S8",
    }
)
"""Parameters recognised as not entering the source functions."""

_OUTPUT_FOR_TARGET: dict[str, tuple[str, ...]] = {
    "t0": ("tCl",),
    "t1": ("tCl",),
    "t2": ("tCl",),
    "p": ("pCl",),
    "phi_plus_psi": ("lCl",),
    "delta_m": ("mPk", "dTk", "mTk"),
    "delta_cb": ("mPk", "dTk", "mTk"),
}
_TOP_KEYS = {
    "family",
    "constraints",
    "description",
    "box_sigma",
    "params",
    "extra_args",
    "l_max",
    "targets",
    "k_grid",
    "sets",
    "storage",
    "networks",
}
_REQUIRED_TOP_KEYS = ("family", "params", "extra_args", "sets")
_PARAM_KEYS = {
    "prior",
    "value",
    "ref",
    "proposal",
    "latex",
    "derived",
    "drop",
    "renames",
    "min",
    "max",
}
_COBAYA_IGNORED_PARAM_KEYS = {"ref", "proposal", "latex", "renames"}
DAMPING_KEY = "compute damping scale"
"""CLASS's setting that makes it compute k_D, a network input (always 'yes')."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ConfigError(CosmicNetError, ValueError):
    """The configuration is invalid; the message says what to change."""


@dataclass(frozen=True)
class ParamRange:
    """One varied parameter and its box [low, high]."""

    name: str
    low: float
    high: float

    @property
    def centre(self) -> float:
        """Middle of the box."""
        return 0.5 * (self.low + self.high)


@dataclass(frozen=True)
class SetSpec:
    """One generated set: name, number of cosmologies, Latin-hypercube seed."""

    name: str
    size: int
    seed: int
    box_fraction: float = 1.0
    """Width of the sampled box as a fraction of the family's, about its centre
    (0.4 of a +-5 sigma box: +-2 sigma, where chains spend their time)."""
    covmat: str = ""
    """A Cobaya covmat file: the set is drawn from a Gaussian about the box centre
    with its covariance for the varied parameters (where chains go, degeneracies
    included) instead of uniformly; draws outside the sampled box are redrawn."""


@dataclass(frozen=True)
class KGridSpec:
    """How the family k grid is built (see :mod:`training.generation.kgrid`)."""

    density: float = 1.0
    """Points per point of the central cosmology's CLASS k list (1: same density)."""
    margin: float = 0.002
    """Relative margin added beyond the k range of the domain's corners."""


@dataclass(frozen=True)
class StorageSpec:
    """How targets are stored in HDF5."""

    dtype: str = "float32"
    compression: str | None = "gzip"
    compression_level: int | None = 4


@dataclass(frozen=True)
class FamilyConfig:
    """A parsed, validated family configuration."""

    family: str
    params: tuple[ParamRange, ...]
    extra_args: dict[str, Any]
    l_max: int
    targets: tuple[str, ...]
    k_grid: KGridSpec
    sets: tuple[SetSpec, ...]
    storage: StorageSpec
    networks: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    """The mapping the config was parsed from (stored as metadata)."""
    constraints: tuple[LinearConstraint, ...] = ()  # points breaking one are not drawn

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the varied parameters, in hypercube order."""
        return tuple(p.name for p in self.params)

    def class_settings(self, point: Mapping[str, float] | None = None) -> dict[str, Any]:
        """CLASS input for one point: fixed settings, l_max, then the varied values."""
        settings = dict(self.extra_args)
        settings["l_max_scalars"] = self.l_max
        if point is None:
            point = {p.name: p.centre for p in self.params}
        settings.update({name: float(value) for name, value in point.items()})
        return settings


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number (got {value!r})")
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be finite (got {value!r})")
    return float(value)


def _integer(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer (got {value!r})")
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum} (got {value})")
    return value


def _check_keys(mapping: Any, allowed: set[str], required: tuple[str, ...], where: str) -> None:
    check_keys(mapping, allowed, where, ConfigError, required)


def _box_from_prior(name: str, prior: Any, box_sigma: float) -> tuple[float, float]:
    where = f"params.{name}.prior"
    if not isinstance(prior, Mapping):
        raise ConfigError(f"{where} must be a mapping ({{min, max}} or {{dist: norm, loc, scale}})")
    if "dist" in prior:
        _check_keys(prior, {"dist", "loc", "scale"}, ("dist", "loc", "scale"), where)
        if prior["dist"] != "norm":
            raise ConfigError(f"{where}: only dist: norm (a centre and a width) is supported")
        loc = _number(prior["loc"], f"{where}.loc")
        scale = _number(prior["scale"], f"{where}.scale")
        if scale <= 0.0:
            raise ConfigError(f"{where}.scale must be > 0 (got {scale})")
        return loc - box_sigma * scale, loc + box_sigma * scale
    _check_keys(prior, {"min", "max"}, ("min", "max"), where)
    return _number(prior["min"], f"{where}.min"), _number(prior["max"], f"{where}.max")


@dataclass(frozen=True)
class ParsedParams:
    """A Cobaya ``params`` block sorted: varied ranges, fixed values, dropped entries."""

    varied: tuple[ParamRange, ...]
    fixed: dict[str, float]
    dropped: dict[str, str]


def classify_params(params: Any, box_sigma: float, strict: bool) -> ParsedParams:
    """Sort a Cobaya ``params`` block into varied, fixed and dropped parameters.

    ``strict`` (family configs) rejects entries that cannot be a family
    parameter; otherwise (seeding from cobaya) they are dropped and reported.
    """
    if not isinstance(params, Mapping) or not params:
        raise ConfigError("params must be a non-empty mapping of parameter names")
    varied: list[ParamRange] = []
    fixed: dict[str, float] = {}
    dropped: dict[str, str] = {}
    for name, entry in params.items():
        where = f"params.{name}"
        if name in NON_SOURCE_PARAMS:
            dropped[name] = "does not enter the source functions"
            continue
        if isinstance(entry, int | float) and not isinstance(entry, bool):
            fixed[name] = _number(entry, where)
            continue
        if isinstance(entry, str):
            if strict:
                raise ConfigError(f"{where}: dependent parameters ({entry!r}) are not supported")
            dropped[name] = f"dependent parameter ({entry})"
            continue
        if entry is None:
            if strict:
                raise ConfigError(f"{where} has no prior or value")
            dropped[name] = "derived parameter"
            continue
        _check_keys(entry, _PARAM_KEYS, (), where)
        if "prior" not in entry and ("min" in entry or "max" in entry):
            raise ConfigError(f"{where}: give the box as prior: {{min: ..., max: ...}}")
        if "prior" in entry:
            if entry.get("drop"):
                message = f"{where} has drop: true (it only feeds a dependent parameter)"
                if strict:
                    raise ConfigError(message)
                raise ConfigError(
                    f"{message}: give the CLASS parameter itself a prior to seed a family"
                )
            low, high = _box_from_prior(name, entry["prior"], box_sigma)
            if not low < high:
                raise ConfigError(f"{where}: empty domain [{low}, {high}]")
            varied.append(ParamRange(name=name, low=low, high=high))
        elif "value" in entry:
            value = entry["value"]
            if isinstance(value, str):
                if strict:
                    raise ConfigError(
                        f"{where}: dependent parameters ({value!r}) are not supported"
                    )
                dropped[name] = f"dependent parameter ({value})"
            else:
                fixed[name] = _number(value, f"{where}.value")
        else:
            if strict:
                raise ConfigError(f"{where} has no prior or value")
            dropped[name] = "derived parameter"
    if not varied:
        raise ConfigError("params: no varied parameter (give at least one a prior)")
    return ParsedParams(tuple(varied), fixed, dropped)


def _parse_sets(sets: Any) -> tuple[SetSpec, ...]:
    if not isinstance(sets, Mapping) or not sets:
        raise ConfigError(
            "sets must be a non-empty mapping: name -> {size, seed[, box_fraction, covmat]}"
        )
    specs = []
    for name, entry in sets.items():
        where = f"sets.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: set names must be identifiers (got {name!r})")
        _check_keys(entry, {"size", "seed", "box_fraction", "covmat"}, ("size", "seed"), where)
        size = _integer(entry["size"], f"{where}.size", 1)
        if size > 10_000_000:
            raise ConfigError(f"{where}.size={size} is not a sensible number of cosmologies")
        fraction = _number(entry.get("box_fraction", 1.0), f"{where}.box_fraction")
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"{where}.box_fraction must be in (0, 1] (got {fraction})")
        seed = _integer(entry["seed"], f"{where}.seed", 0)
        covmat = entry.get("covmat", "")
        # Read when the set's points are drawn (once, then frozen in family.h5), so a
        # stored config still parses where the file is not.
        if not isinstance(covmat, str):
            raise ConfigError(
                f"{where}.covmat must be the path of a Cobaya covmat file (got {covmat!r})"
            )
        specs.append(SetSpec(name=name, size=size, seed=seed, box_fraction=fraction, covmat=covmat))
    seeds = [spec.seed for spec in specs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"sets must have distinct seeds to be independent (got {seeds})")
    return tuple(specs)


def _parse_targets(targets: Any, extra_args: Mapping[str, Any]) -> tuple[str, ...]:
    if not isinstance(targets, list | tuple) or not targets:
        raise ConfigError("targets must be a non-empty list of source names")
    unknown = [t for t in targets if t not in KNOWN_TARGETS]
    if unknown:
        raise ConfigError(f"unknown target(s) {unknown}; known: {list(KNOWN_TARGETS)}")
    if len(set(targets)) != len(targets):
        raise ConfigError(f"targets has duplicates: {list(targets)}")
    output = {token.strip() for token in str(extra_args.get("output", "")).split(",")}
    for target in targets:
        if not output & set(_OUTPUT_FOR_TARGET[target]):
            raise ConfigError(
                f"target {target} needs one of {list(_OUTPUT_FOR_TARGET[target])} in "
                f"extra_args.output (got {extra_args.get('output')!r})"
            )
    if "delta_cb" in targets and not extra_args.get("N_ncdm"):
        raise ConfigError("target delta_cb exists only with massive neutrinos (N_ncdm > 0)")
    return tuple(targets)


def _parse_extra_args(extra_args: Any, varied: tuple[ParamRange, ...]) -> dict[str, Any]:
    if not isinstance(extra_args, Mapping):
        raise ConfigError("extra_args must be a mapping of CLASS settings")
    settings = copy.deepcopy(dict(extra_args))
    clash = sorted({p.name for p in varied} & set(settings))
    if clash:
        raise ConfigError(f"{clash} are both varied (params) and fixed (extra_args)")
    damping = str(settings.get(DAMPING_KEY, "yes")).lower()
    if damping not in ("yes", "y", "true"):
        raise ConfigError(f"extra_args['{DAMPING_KEY}'] must be 'yes' (network inputs need k_D)")
    settings[DAMPING_KEY] = "yes"
    return settings


def _parse_k_grid(entry: Any) -> KGridSpec:
    entry = {} if entry is None else entry
    _check_keys(entry, {"density", "margin"}, (), "k_grid")
    spec = KGridSpec(**{key: _number(value, f"k_grid.{key}") for key, value in entry.items()})
    if not 0.25 <= spec.density <= 20.0:
        raise ConfigError(f"k_grid.density must be in [0.25, 20] (got {spec.density})")
    if not 0.0 <= spec.margin < 0.5:
        raise ConfigError(f"k_grid.margin must be in [0, 0.5) (got {spec.margin})")
    return spec


def _parse_storage(entry: Any) -> StorageSpec:
    entry = {} if entry is None else entry
    _check_keys(entry, {"dtype", "compression", "compression_level"}, (), "storage")
    spec = StorageSpec(**entry)
    if spec.dtype not in ("float32", "float64"):
        raise ConfigError(f"storage.dtype must be float32 or float64 (got {spec.dtype!r})")
    if spec.compression not in (None, "gzip", "lzf"):
        raise ConfigError(
            f"storage.compression must be gzip, lzf or null (got {spec.compression!r})"
        )
    if spec.compression == "gzip":
        _integer(spec.compression_level, "storage.compression_level", 0)
        if spec.compression_level > 9:
            raise ConfigError("storage.compression_level must be in 0..9")
    return spec


def _parse_constraints(entries: Any, varied: tuple[ParamRange, ...]) -> tuple:
    """``constraints: [{coefficients: {w0_fld: 1, wa_fld: 1}, max: -0.1}, ...]``."""
    if not isinstance(entries, list | None):
        raise ConfigError("constraints must be a list of {coefficients, min, max} mappings")
    parsed = []
    for index, entry in enumerate(entries or []):
        where = f"constraints[{index}]"
        _check_keys(entry, {"coefficients", "min", "max"}, ("coefficients",), where)
        coefficients = entry["coefficients"]
        valid = isinstance(coefficients, Mapping) and bool(coefficients)
        unknown = set(coefficients) - {p.name for p in varied} if valid else {str(coefficients)}
        if unknown or not {"min", "max"} & set(entry):
            raise ConfigError(
                f"{where} must map varied parameters to numbers (not {sorted(unknown)}) under "
                "coefficients, with min, max or both"
            )
        low, high = (entry.get(key) for key in ("min", "max"))
        pairs = tuple((str(n), _number(v, f"{where}.{n}")) for n, v in coefficients.items())
        parsed.append(
            LinearConstraint(
                pairs,
                None if low is None else _number(low, f"{where}.min"),
                None if high is None else _number(high, f"{where}.max"),
            )
        )
    return tuple(parsed)


def parse_config(raw: Mapping[str, Any]) -> FamilyConfig:
    """Validate a family mapping (as read from YAML) into a :class:`FamilyConfig`."""
    _check_keys(raw, _TOP_KEYS, _REQUIRED_TOP_KEYS, "the family config")
    family = raw["family"]
    if not isinstance(family, str) or not _NAME.match(family):
        raise ConfigError(f"family must be an identifier (got {family!r})")
    box_sigma = _number(raw.get("box_sigma", 5.0), "box_sigma")
    if box_sigma <= 0.0:
        raise ConfigError(f"box_sigma must be > 0 (got {box_sigma})")
    parsed = classify_params(raw["params"], box_sigma, strict=True)
    for name, reason in parsed.dropped.items():
        logger.info("parameter %s left out: %s", name, reason)
    extra_args = _parse_extra_args(raw["extra_args"], parsed.varied)
    extra_args.update(parsed.fixed)
    l_max = _integer(raw.get("l_max", L_MAX), "l_max", 2)
    if "l_max_scalars" in extra_args and extra_args.pop("l_max_scalars") != l_max:
        raise ConfigError("set the highest multipole with l_max, not extra_args.l_max_scalars")
    networks = raw.get("networks") or {}
    if not isinstance(networks, Mapping):
        raise ConfigError("networks must be a mapping (reserved for network settings)")
    return FamilyConfig(
        family=family,
        params=parsed.varied,
        extra_args=extra_args,
        l_max=l_max,
        targets=_parse_targets(raw.get("targets", list(DEFAULT_TARGETS)), extra_args),
        k_grid=_parse_k_grid(raw.get("k_grid")),
        sets=_parse_sets(raw["sets"]),
        storage=_parse_storage(raw.get("storage")),
        networks=dict(networks),
        description=str(raw.get("description", "")),
        raw=copy.deepcopy(dict(raw)),
        constraints=_parse_constraints(raw.get("constraints"), parsed.varied),
    )


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error when it is not one."""
    path = Path(path)
    try:
        with path.open() as stream:
            data = yaml.safe_load(stream)
    except FileNotFoundError as error:
        raise ConfigError(f"config file not found: {path}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must contain a YAML mapping")
    return dict(data)


SHIFT_MATRIX_KEY = "projected_loss_shift_matrix"


def _resolve_file_references(raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Shift-matrix files named relative to the config file, made absolute."""
    networks = raw.get("networks")
    if not isinstance(networks, Mapping):
        return raw
    resolved = dict(networks)
    for name, entry in networks.items():
        if isinstance(entry, Mapping) and isinstance(entry.get(SHIFT_MATRIX_KEY), str):
            resolved[name] = {**entry, SHIFT_MATRIX_KEY: str(folder / entry[SHIFT_MATRIX_KEY])}
    return {**raw, "networks": resolved}


def load_config(path: str | Path) -> FamilyConfig:
    """Read and validate a family YAML file (files it names are relative to its folder)."""
    try:
        raw = read_yaml(path)
        return parse_config(_resolve_file_references(raw, Path(path).resolve().parent))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
