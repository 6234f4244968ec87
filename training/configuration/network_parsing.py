"""Validation of the ``networks:`` block: every field parsed and checked in one pass.

``FIELD_PARSERS`` maps each :class:`~training.configuration.networks.NetworkConfig`
field to its parser (a test checks that the two agree); ``_CONSISTENCY`` holds
the rules that join several fields.  Unknown keys are refused with a
did-you-mean.  ``projected_loss_shift_matrix`` is a mapping or the path of a
YAML file holding one (``cosmicnet shift-matrix --out``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from cosmicnet_cobaya.networks.normalisation import OUTPUT_TRANSFORMS
from cosmicnet_cobaya.networks.time_ranges import parse_tau_range
from training.configuration.keys import check_keys
from training.configuration.networks import (
    DEFAULT_TRAIN,
    DEFAULTS,
    SEARCH_KEYS,
    ConvLayer,
    NetworkConfig,
    NetworkConfigError,
    NetworksConfig,
    SearchConfig,
)
from training.learning.line_of_sight import POLARISATION_SOURCE

_TOP_KEYS = {"seed", "learning_rate", "train", *DEFAULTS}
_NETWORK_KEYS = {item.name for item in fields(NetworkConfig)}
_SEARCH_KEYS = {item.name for item in fields(SearchConfig)}


def _check_keys(data: Any, allowed: set[str], where: str) -> None:
    check_keys(data, allowed, where, NetworkConfigError)


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


def _read_shift_matrix(path: str, where: str) -> Any:
    """The mapping in a shift-matrix file (``cosmicnet shift-matrix --out``)."""
    try:
        with Path(path).open() as stream:
            return yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as error:
        raise NetworkConfigError(
            f"{where}: cannot read the shift-matrix file {path} ({error}); write one with "
            "`cosmicnet shift-matrix ... --out FILE`"
        ) from error


def _shift_matrix(value: Any, where: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
    if isinstance(value, str):
        value = _read_shift_matrix(value, where)
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
