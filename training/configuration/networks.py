"""Schema and validation of the ``networks:`` block of a family config.

Example (every key optional; defaults are the paper's Tables 2-4)::

    networks:
      seed: 1234
      learning_rate: 1.0e-3
      train: [t0, t0_late, t1, t1_late, t2, t2_late, phi_plus_psi, delta_m]
      t0: {epochs: 15, tau_range: [0, 1.5]}
      t0_late: {epochs: 20, learning_rate_decay: 0.85}
      t2:
        epochs: 45
        central_dense: [230, 245]
        search: {candidates: 20, keep: 5, epochs: 3,
                 ranges: {central_dense: [64, 512], conv_filters: [4, 24]}}

Per network: ``epochs``, ``learning_rate``, ``seed``, ``time_inputs``,
``params``, ``scales``, ``k_bases``, ``output_transform``, ``output_std_floor``
and ``output_std_cap`` (affine_k only), ``time_dense``,
``time_skip``, ``params_dense``, ``scales_dense``, ``conv_branches`` (a list
of branches, each a list of ``{filters, kernel, stride, pool}``),
``central_dense``, ``leaky_slope``, ``learning_rate_decay``,
``learning_rate_warmup_steps``, ``cosmologies_per_batch``, ``weight_average``,
``trainable_layers`` (the layers a run trains, others frozen; default all),
``projected_loss_weight``,
``projected_loss_frequencies``, ``projected_loss_multipoles`` and
``projected_loss_k_max`` (a Bessel-kernel projection), ``projected_loss_spectrum``
(onto the relative C_l errors), ``projected_loss_te_weight`` (with it, the
weight of the TE errors beside the TT ones), ``projected_loss_polarisation`` (a
polarisation source: the E-mode kernel and relative EE errors in place of TT),
``projected_loss_shift_weight`` and
``projected_loss_shift_matrix`` (with it, the weight of the posterior shift those
errors would cause), ``projected_loss_frequency_weight`` (with a
Bessel-kernel projection, the weight of the frequency projection added to it), ``source`` (the
CLASS source a network predicts; default its name), ``tau_range`` (the slices
it serves, ``[low, high]`` in units of tau_rec, high null for open; the
networks of one source must not overlap and, to serve it, cover every tau),
``search``.

The defaults split t0, t1 and t2 at tau = 1.5 tau_rec into a recombination
network (``t0``) and a late-time one (``t0_late``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.networks.inputs import InputSpec
from cosmicnet_cobaya.networks.normalisation import OUTPUT_TRANSFORMS
from cosmicnet_cobaya.networks.time_ranges import FULL_RANGE, TauRange, parse_tau_range
from training.learning.line_of_sight import POLARISATION_SOURCE, LineOfSightProjection


class NetworkConfigError(CosmicNetError, ValueError):
    """The ``networks:`` block of a config is invalid."""


@dataclass(frozen=True)
class ConvLayer:
    """One Conv1D (ReLU, padding 'same') followed by max pooling."""

    filters: int
    kernel: int
    stride: int
    pool: int = 2


SEARCH_KEYS = (
    "time_dense",
    "central_dense",
    "params_dense",
    "scales_dense",
    "conv_filters",
    "conv_kernel",
    "conv_stride",
    "learning_rate",
)


@dataclass(frozen=True)
class SearchConfig:
    """Hyperparameter selection: candidates drawn from log-uniform ranges."""

    candidates: int = 8
    keep: int = 3
    epochs: int = 2
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _branches(*specs: tuple[tuple[int, int, int, int], ...]) -> tuple[tuple[ConvLayer, ...], ...]:
    return tuple(tuple(ConvLayer(*layer) for layer in branch) for branch in specs)


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training settings of one network."""

    epochs: int
    time_inputs: tuple[str, ...]
    time_dense: tuple[int, ...]
    time_skip: bool
    params_dense: int
    scales_dense: int
    conv_branches: tuple[tuple[ConvLayer, ...], ...]
    central_dense: tuple[int, ...]
    output_transform: str = "affine"
    output_std_floor: float = 0.0
    """affine_k: smallest per-k standard deviation, in units of the overall one."""
    output_std_cap: float = 0.0
    """affine_k: largest per-k standard deviation, in units of the overall one (0: none)."""
    params: bool = True
    scales: bool = True
    k_bases: tuple[str, ...] = ("cos_in", "sin_in", "damping")
    learning_rate: float = 1e-3
    learning_rate_decay: float = 1.0
    """The learning rate is multiplied by this factor after every epoch."""
    learning_rate_warmup_steps: int = 0
    """Steps over which the learning rate rises linearly from zero at the start of a run
    (not on resuming); lets a restarted Adam learn its moments before full steps
    when fine-tuning a trained network (0: none)."""
    cosmologies_per_batch: int = 1
    """Cosmologies (all their served tau slices) per training step; the paper uses one."""
    weight_average: float = 0.0
    """Momentum of the moving average of the weights over the steps (0: no averaging)."""
    trainable_layers: tuple[str, ...] = ()
    """Names of the layers a run trains, the others frozen (e.g. ``[output]`` to refit
    the head of a trained network with ``--init-from``; empty: all layers)."""
    projected_loss_weight: float = 0.0
    """Weight of the line-of-sight projected error in the loss (learning/losses.py; 0: MSE)."""
    projected_loss_frequencies: tuple[float, ...] = (0.0, 0.25, 0.5)
    """Frequencies along tau, in units of k, at which the error is projected."""
    projected_loss_multipoles: tuple[int, ...] = ()
    """Multipoles of a projection with the Bessel kernel j_l(k (tau_0 - tau)) instead
    of the frequencies (empty: frequencies)."""
    projected_loss_k_max: float = 0.1
    """Largest k [1/Mpc] of the Bessel-kernel projection."""
    projected_loss_spectrum: bool = False
    """Bessel kernel: project onto the relative C_l errors at the multipoles."""
    projected_loss_frequency_weight: float = 0.0
    """Bessel kernel: weight of the frequency projection added to the loss as well."""
    projected_loss_te_weight: float = 0.0
    """Spectrum projection: weight of the TE errors (relative to sqrt(C_l^TT C_l^EE),
    with the cosmology's S_T2 for a temperature source, S_T0 for a polarisation one)
    beside the TT (or EE) ones (0: none)."""
    projected_loss_polarisation: bool = False
    """Spectrum projection of a polarisation source (t2): E-mode kernel j_l(x) / x^2 and
    relative EE errors in place of the TT ones."""
    projected_loss_shift_weight: float = 0.0
    """Spectrum projection: weight of the Planck posterior shift the relative errors
    would cause, through ``projected_loss_shift_matrix`` (0: none)."""
    projected_loss_shift_matrix: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """Parameter -> shift in sigma per unit relative error at each multipole, TT (EE
    with ``projected_loss_polarisation``) then TE (``cosmicnet shift-matrix``)."""
    leaky_slope: float = 0.3
    seed: int = 1234
    source: str = ""
    """The CLASS source predicted (empty: the network's name)."""
    tau_range: TauRange = FULL_RANGE
    """The tau slices served, in units of tau_rec (high None: open)."""
    search: SearchConfig = field(default_factory=SearchConfig)

    @property
    def projection(self) -> LineOfSightProjection:
        """How the projected loss projects the error along the line of sight."""
        return LineOfSightProjection(
            self.projected_loss_frequencies,
            self.projected_loss_multipoles,
            self.projected_loss_k_max,
            self.projected_loss_spectrum,
            self.projected_loss_te_weight,
            self.projected_loss_shift_weight,
            tuple(row for _, row in self.projected_loss_shift_matrix),
            self.projected_loss_polarisation,
        )

    @property
    def inputs(self) -> InputSpec:
        """The input definition stored with the network."""
        return InputSpec(self.time_inputs, self.params, self.scales, self.k_bases)

    def architecture(self) -> dict[str, Any]:
        """JSON-ready architecture and training settings (for metadata.json)."""
        data = asdict(self)
        data.pop("search")
        data["tau_range"] = list(self.tau_range)
        return data


TIME_ALL = ("g", "g_prime", "e_kappa", "log10_tau", "log10_tau_rec", "log10_tau_reio")
LOGS = ("log10_tau", "log10_tau_rec", "log10_tau_reio")
LATE_START = 1.5
"""t0, t1, t2 are split at this tau / tau_rec: after it the sources are 100-1000
times below their recombination peak (ISW, reionization), so one output
normalisation for all times would bury them in the network's noise."""

DEFAULTS: dict[str, NetworkConfig] = {
    # Paper Table 2; recombination only, t0_late serves later times.
    "t0": NetworkConfig(
        tau_range=(0.0, LATE_START),
        epochs=15,
        time_inputs=TIME_ALL,
        time_dense=(192, 56, 138),
        time_skip=True,
        params_dense=196,
        scales_dense=24,
        conv_branches=_branches(((15, 4, 6, 2), (9, 4, 3, 2)), ((7, 4, 5, 2), (7, 6, 3, 2))),
        central_dense=(289, 154),
    ),
    # Paper Table 4.
    "t1": NetworkConfig(
        tau_range=(0.0, LATE_START),
        epochs=3,
        time_inputs=("e_kappa", *LOGS),
        time_dense=(98,),
        time_skip=False,
        params_dense=17,
        scales_dense=29,
        conv_branches=_branches(((6, 11, 14, 2), (9, 7, 5, 2)), ((17, 6, 14, 2), (5, 6, 5, 2))),
        central_dense=(50, 44),
    ),
    # Paper Table 3.
    "t2": NetworkConfig(
        tau_range=(0.0, LATE_START),
        epochs=45,
        time_inputs=("g", *LOGS),
        time_dense=(73, 154, 76),
        time_skip=True,
        params_dense=39,
        scales_dense=14,
        conv_branches=_branches(((6, 5, 4, 2), (6, 3, 2, 2)), ((8, 4, 6, 2), (6, 6, 3, 2))),
        central_dense=(230, 245),
    ),
}
_SMOOTH = NetworkConfig(
    epochs=10,
    time_inputs=("e_kappa", *LOGS),
    time_dense=(64, 64),
    time_skip=True,
    params_dense=32,
    scales_dense=16,
    conv_branches=_branches(((8, 8, 8, 2),)),
    central_dense=(128, 128),
    output_transform="asinh",
)
DEFAULTS.update({"phi_plus_psi": _SMOOTH, "delta_m": _SMOOTH, "delta_cb": _SMOOTH})


def _late(source: str, **changes: Any) -> NetworkConfig:
    """The late-time network of ``source``: its architecture, tau >= LATE_START."""
    return replace(
        DEFAULTS[source],
        source=source,
        tau_range=(LATE_START, None),
        epochs=20,
        learning_rate_decay=0.85,
        **changes,
    )


DEFAULTS.update(
    {
        "t0_late": _late("t0", time_inputs=(*TIME_ALL, "log10_g")),
        "t1_late": _late("t1"),
        "t2_late": _late("t2", time_inputs=("g", "log10_g", *LOGS)),
    }
)
DEFAULT_TRAIN = ("t0", "t0_late", "t1", "t1_late", "t2", "t2_late", "phi_plus_psi", "delta_m")
DEFAULT_TRAIN += ("delta_cb",)


@dataclass(frozen=True)
class NetworksConfig:
    """The validated ``networks:`` block."""

    networks: dict[str, NetworkConfig]
    train: tuple[str, ...]


_TOP_KEYS = {"seed", "learning_rate", "train", *DEFAULTS}
_NETWORK_KEYS = {item.name for item in fields(NetworkConfig)}
_SEARCH_KEYS = {item.name for item in fields(SearchConfig)}


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(data, Mapping):
        raise NetworkConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise NetworkConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _positive_ints(value: Any, where: str) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, list | tuple) else (value,)
    if not values or not all(isinstance(item, int) and item > 0 for item in values):
        raise NetworkConfigError(f"{where} must be positive integers, got {value!r}")
    return values


def _integer(positive: bool) -> Callable[[Any, str], int]:
    def parse(value: Any, where: str) -> int:
        if not isinstance(value, int) or value < 0 or (positive and value == 0):
            raise NetworkConfigError(f"{where} must be a positive integer")
        return value

    return parse


def _number(low: float, high: float, low_open: bool, high_open: bool, meaning: str) -> Callable:
    def parse(value: Any, where: str) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
        if not ok:
            raise NetworkConfigError(f"{where} must be {meaning}")
        return float(value)

    return parse


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise NetworkConfigError(f"{where} must be true or false")
    return value


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _frequencies(value: Any, where: str) -> tuple[float, ...]:
    values = _listed(value)
    if not values or not all(isinstance(v, int | float) and 0 <= v <= 1 for v in values):
        raise NetworkConfigError(f"{where} must be numbers in [0, 1] (units of k)")
    return tuple(float(v) for v in values)


def _multipoles(value: Any, where: str) -> tuple[int, ...]:
    values = _listed(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 2 for v in values):
        raise NetworkConfigError(f"{where} must be integer multipoles >= 2")
    return tuple(values)


def _layer_names(value: Any, where: str) -> tuple[str, ...]:
    values = _listed(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise NetworkConfigError(f"{where} must be a list of layer names (e.g. [output])")
    return tuple(values)


def _source(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise NetworkConfigError(f"{where} must be a CLASS source name")
    return value


def _tau_range(value: Any, where: str) -> Any:
    try:
        return parse_tau_range(value, where)
    except ValueError as error:
        raise NetworkConfigError(str(error)) from error


def _output_transform(value: Any, where: str) -> str:
    if value not in OUTPUT_TRANSFORMS:
        raise NetworkConfigError(f"{where} must be one of {OUTPUT_TRANSFORMS}")
    return value


_NON_NEGATIVE = _number(0.0, float("inf"), False, False, "a number >= 0")
_POSITIVE = _number(0.0, float("inf"), True, False, "a positive number")

FIELD_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "time_dense": lambda value, where: _positive_ints(value, where),
    "central_dense": lambda value, where: _positive_ints(value, where),
    "epochs": _integer(positive=True),
    "cosmologies_per_batch": _integer(positive=True),
    "params_dense": _integer(positive=False),
    "scales_dense": _integer(positive=False),
    "seed": _integer(positive=False),
    "learning_rate_warmup_steps": _integer(positive=False),
    "learning_rate": _POSITIVE,
    "leaky_slope": _POSITIVE,
    "learning_rate_decay": _number(0.0, 1.0, True, False, "a number in (0, 1]"),
    "weight_average": _number(0.0, 1.0, False, True, "a number in [0, 1) (0: no averaging)"),
    "output_std_floor": _NON_NEGATIVE,
    "output_std_cap": _NON_NEGATIVE,
    "projected_loss_weight": _NON_NEGATIVE,
    "projected_loss_frequency_weight": _NON_NEGATIVE,
    "projected_loss_te_weight": _NON_NEGATIVE,
    "projected_loss_shift_weight": _NON_NEGATIVE,
    "projected_loss_shift_matrix": lambda value, where: _shift_matrix(value, where),
    "projected_loss_k_max": _number(0.0, float("inf"), True, False, "a positive k in 1/Mpc"),
    "projected_loss_frequencies": _frequencies,
    "projected_loss_multipoles": _multipoles,
    "source": _source,
    "tau_range": _tau_range,
    "time_skip": _boolean,
    "params": _boolean,
    "scales": _boolean,
    "projected_loss_spectrum": _boolean,
    "projected_loss_polarisation": _boolean,
    "time_inputs": lambda value, where: tuple(value),
    "k_bases": lambda value, where: tuple(value),
    "trainable_layers": _layer_names,
    "output_transform": _output_transform,
    "conv_branches": lambda value, where: _conv_branches(value, where),
    "search": lambda value, where: _search(value, where),
}
"""How each key of a network entry is checked and converted (one table, one pass)."""


def _network(name: str, data: Mapping[str, Any], top: Mapping[str, Any]) -> NetworkConfig:
    where = f"networks.{name}"
    _check_keys(data, _NETWORK_KEYS, where)
    changes: dict[str, Any] = {key: top[key] for key in ("seed", "learning_rate") if key in top}
    for key, value in data.items():
        changes[key] = FIELD_PARSERS[key](value, f"{where}.{key}")
    config = replace(DEFAULTS[name], **changes)
    if not config.source:
        config = replace(config, source=name)
    _check_consistency(config, where)
    try:
        config.inputs  # noqa: B018 - validates the input names
        config.projection  # noqa: B018 - validates the projection's terms
    except ValueError as error:
        raise NetworkConfigError(f"{where}: {error}") from error
    return config


_CONSISTENCY: tuple[tuple[Callable[[NetworkConfig], bool], str], ...] = (
    (
        lambda c: bool(c.output_std_floor or c.output_std_cap) and c.output_transform != "affine_k",
        "output_std_floor and output_std_cap need output_transform: affine_k",
    ),
    (
        lambda c: bool(c.output_std_cap) and c.output_std_cap < c.output_std_floor,
        "output_std_cap must not be below output_std_floor",
    ),
    (
        lambda c: c.projected_loss_spectrum and not c.projected_loss_multipoles,
        "projected_loss_spectrum needs projected_loss_multipoles "
        "(the multipoles whose relative C_l errors the loss adds)",
    ),
    (
        lambda c: bool(c.projected_loss_te_weight) and not c.projected_loss_spectrum,
        "projected_loss_te_weight weighs TE errors beside the relative TT ones of the "
        "spectrum projection: set projected_loss_spectrum: true and its multipoles",
    ),
    (
        lambda c: c.projected_loss_polarisation and not c.projected_loss_spectrum,
        "projected_loss_polarisation projects onto relative EE errors: set "
        "projected_loss_spectrum: true and its multipoles",
    ),
    (
        lambda c: (
            bool(c.projected_loss_shift_weight)
            and not (c.projected_loss_spectrum and c.projected_loss_shift_matrix)
        ),
        "projected_loss_shift_weight needs the spectrum projection and "
        "projected_loss_shift_matrix (print one with `cosmicnet shift-matrix`)",
    ),
    (
        lambda c: bool(c.projected_loss_frequency_weight) and not c.projected_loss_multipoles,
        "projected_loss_frequency_weight goes with projected_loss_multipoles; without them "
        "projected_loss_weight already weighs the frequency projection",
    ),
    (
        lambda c: c.projected_loss_polarisation and c.source != POLARISATION_SOURCE,
        f"projected_loss_polarisation is for the polarisation source {POLARISATION_SOURCE}",
    ),
)
"""Settings that only make sense together: (violated, message)."""


def _check_consistency(config: NetworkConfig, where: str) -> None:
    """Raise NetworkConfigError naming the first pair of settings that do not fit."""
    for violated, message in _CONSISTENCY:
        if violated(config):
            raise NetworkConfigError(
                f"{where}.{message} (this network predicts {config.source}, "
                f"output_transform {config.output_transform})"
            )


def _shift_matrix(value: Any, where: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
    if not isinstance(value, Mapping) or not value:
        raise NetworkConfigError(
            f"{where} must map parameter names to rows of numbers (cosmicnet shift-matrix)"
        )
    rows = []
    for name, row in value.items():
        if not isinstance(row, list | tuple) or not all(
            isinstance(item, int | float) and not isinstance(item, bool) for item in row
        ):
            raise NetworkConfigError(f"{where}.{name} must be a list of numbers")
        rows.append((str(name), tuple(float(item) for item in row)))
    return tuple(rows)


def _conv_branches(value: Any, where: str) -> tuple[tuple[ConvLayer, ...], ...]:
    if not isinstance(value, list):
        raise NetworkConfigError(f"{where} must be a list of branches")
    branches = []
    for index, branch in enumerate(value):
        if not isinstance(branch, list) or not branch:
            raise NetworkConfigError(f"{where}[{index}] must be a non-empty list of layers")
        layers = []
        for position, layer in enumerate(branch):
            at = f"{where}[{index}][{position}]"
            _check_keys(layer, {"filters", "kernel", "stride", "pool"}, at)
            missing = {"filters", "kernel", "stride"} - set(layer)
            if missing:
                raise NetworkConfigError(f"{at} lacks {sorted(missing)}")
            sizes = [layer["filters"], layer["kernel"], layer["stride"], layer.get("pool", 2)]
            _positive_ints(sizes, at)
            layers.append(ConvLayer(*sizes))
        branches.append(tuple(layers))
    return tuple(branches)


def _search(value: Any, where: str) -> SearchConfig:
    _check_keys(value, _SEARCH_KEYS, where)
    ranges = value.get("ranges", {})
    _check_keys(ranges, set(SEARCH_KEYS), f"{where}.ranges")
    checked = {}
    for key, bounds in ranges.items():
        if (
            not isinstance(bounds, list | tuple)
            or len(bounds) != 2
            or not 0 < bounds[0] <= bounds[1]
        ):
            raise NetworkConfigError(
                f"{where}.ranges.{key} must be [low, high] with 0 < low <= high"
            )
        checked[key] = (float(bounds[0]), float(bounds[1]))
    counts = {
        key: value.get(key, getattr(SearchConfig(), key))
        for key in ("candidates", "keep", "epochs")
    }
    for key, count in counts.items():
        if not isinstance(count, int) or count < 1:
            raise NetworkConfigError(f"{where}.{key} must be a positive integer")
    return SearchConfig(ranges=checked, **counts)


def parse_networks_config(block: Mapping[str, Any] | None) -> NetworksConfig:
    """Validate the ``networks:`` block (None: all defaults)."""
    block = {} if block is None else block
    _check_keys(block, _TOP_KEYS, "networks")
    train = tuple(block.get("train", DEFAULT_TRAIN))
    unknown = [name for name in train if name not in DEFAULTS]
    if unknown:
        raise NetworkConfigError(
            f"networks.train names unknown networks {unknown}; known: {sorted(DEFAULTS)}"
        )
    networks = {name: _network(name, block.get(name) or {}, block) for name in DEFAULTS}
    return NetworksConfig(networks=networks, train=train)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_candidate(config: NetworkConfig, rng: np.random.Generator) -> NetworkConfig:
    """A candidate architecture: each ranged size drawn from a log-uniform prior."""
    ranges = config.search.ranges

    def integer(key: str, current: int) -> int:
        if key not in ranges:
            return current
        return max(1, round(_log_uniform(rng, *ranges[key])))

    changes: dict[str, Any] = {
        "time_dense": tuple(integer("time_dense", units) for units in config.time_dense),
        "central_dense": tuple(integer("central_dense", units) for units in config.central_dense),
        "params_dense": integer("params_dense", config.params_dense) if config.params_dense else 0,
        "scales_dense": integer("scales_dense", config.scales_dense) if config.scales_dense else 0,
        "conv_branches": tuple(
            tuple(
                ConvLayer(
                    filters=integer("conv_filters", layer.filters),
                    kernel=integer("conv_kernel", layer.kernel),
                    stride=integer("conv_stride", layer.stride),
                    pool=layer.pool,
                )
                for layer in branch
            )
            for branch in config.conv_branches
        ),
    }
    if "learning_rate" in ranges:
        changes["learning_rate"] = _log_uniform(rng, *ranges["learning_rate"])
    return replace(config, **changes)


def config_copy(config: NetworkConfig, **changes: Any) -> NetworkConfig:
    """A modified copy (deep, so nested tuples are never shared mutable state)."""
    return replace(copy.deepcopy(config), **changes)
