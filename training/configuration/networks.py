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

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.networks.inputs import InputSpec
from cosmicnet_cobaya.networks.time_ranges import FULL_RANGE, TauRange
from training.learning.line_of_sight import LineOfSightProjection


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


RUN_SETTING = {"run": True}
"""Field metadata of a training-run setting: a fine-tuning run's value replaces the
starting network's in the set's metadata (the rest is the architecture)."""


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training settings of one network."""

    epochs: int = field(metadata=RUN_SETTING)
    time_inputs: tuple[str, ...]
    time_dense: tuple[int, ...]
    time_skip: bool
    params_dense: int
    scales_dense: int
    conv_branches: tuple[tuple[ConvLayer, ...], ...]
    central_dense: tuple[int, ...]
    output_transform: str = field(default="affine", metadata=RUN_SETTING)
    output_std_floor: float = field(default=0.0, metadata=RUN_SETTING)
    """affine_k: smallest per-k standard deviation, in units of the overall one."""
    output_std_cap: float = field(default=0.0, metadata=RUN_SETTING)
    """affine_k: largest per-k standard deviation, in units of the overall one (0: none)."""
    params: bool = True
    scales: bool = True
    k_bases: tuple[str, ...] = ("cos_in", "sin_in", "damping")
    learning_rate: float = field(default=1e-3, metadata=RUN_SETTING)
    learning_rate_decay: float = field(default=1.0, metadata=RUN_SETTING)
    """The learning rate is multiplied by this factor after every epoch."""
    learning_rate_warmup_steps: int = field(default=0, metadata=RUN_SETTING)
    """Steps over which the learning rate rises linearly from zero at the start of a run
    (not on resuming); lets a restarted Adam learn its moments before full steps
    when fine-tuning a trained network (0: none)."""
    cosmologies_per_batch: int = field(default=1, metadata=RUN_SETTING)
    """Cosmologies (all their served tau slices) per training step; the paper uses one."""
    weight_average: float = field(default=0.0, metadata=RUN_SETTING)
    """Momentum of the moving average of the weights over the steps (0: no averaging)."""
    trainable_layers: tuple[str, ...] = field(default=(), metadata=RUN_SETTING)
    """Names of the layers a run trains, the others frozen (e.g. ``[output]`` to refit
    the head of a trained network with ``--init-from``; empty: all layers)."""
    projected_loss_weight: float = field(default=0.0, metadata=RUN_SETTING)
    """Weight of the line-of-sight projected error in the loss (learning/losses.py; 0: MSE)."""
    projected_loss_frequencies: tuple[float, ...] = field(
        default=(0.0, 0.25, 0.5), metadata=RUN_SETTING
    )
    """Frequencies along tau, in units of k, at which the error is projected."""
    projected_loss_multipoles: tuple[int, ...] = field(default=(), metadata=RUN_SETTING)
    """Multipoles of a projection with the Bessel kernel j_l(k (tau_0 - tau)) instead
    of the frequencies (empty: frequencies)."""
    projected_loss_k_max: float = field(default=0.1, metadata=RUN_SETTING)
    """Largest k [1/Mpc] of the Bessel-kernel projection."""
    projected_loss_spectrum: bool = field(default=False, metadata=RUN_SETTING)
    """Bessel kernel: project onto the relative C_l errors at the multipoles."""
    projected_loss_frequency_weight: float = field(default=0.0, metadata=RUN_SETTING)
    """Bessel kernel: weight of the frequency projection added to the loss as well."""
    projected_loss_te_weight: float = field(default=0.0, metadata=RUN_SETTING)
    """Spectrum projection: weight of the TE errors (relative to sqrt(C_l^TT C_l^EE),
    with the cosmology's S_T2 for a temperature source, S_T0 for a polarisation one)
    beside the TT (or EE) ones (0: none)."""
    projected_loss_polarisation: bool = field(default=False, metadata=RUN_SETTING)
    """Spectrum projection of a polarisation source (t2): E-mode kernel j_l(x) / x^2 and
    relative EE errors in place of the TT ones."""
    projected_loss_shift_weight: float = field(default=0.0, metadata=RUN_SETTING)
    """Spectrum projection: weight of the Planck posterior shift the relative errors
    would cause, through ``projected_loss_shift_matrix`` (0: none)."""
    projected_loss_shift_matrix: tuple[tuple[str, tuple[float, ...]], ...] = field(
        default=(), metadata=RUN_SETTING
    )
    """Parameter -> shift in sigma per unit relative error at each multipole, TT (EE
    with ``projected_loss_polarisation``) then TE (``cosmicnet shift-matrix``)."""
    leaky_slope: float = 0.3
    seed: int = field(default=1234, metadata=RUN_SETTING)
    source: str = field(default="", metadata=RUN_SETTING)
    """The CLASS source predicted (empty: the network's name)."""
    tau_range: TauRange = field(default=FULL_RANGE, metadata=RUN_SETTING)
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

    @classmethod
    def run_settings(cls) -> tuple[str, ...]:
        """Names of the training-run settings (fields marked ``RUN_SETTING``)."""
        return tuple(item.name for item in fields(cls) if item.metadata.get("run"))

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
