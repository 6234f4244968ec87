"""``NetworkSourceProvider``: source functions predicted by a network set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.features import compute_features, k_bases
from cosmicnet_cobaya.hook.bridge import PreparedPerturbations
from cosmicnet_cobaya.networks.domain import domain_violations
from cosmicnet_cobaya.networks.network_set import (
    NetworkSet,
    NetworkSetError,
    derived_sources,
    load_network_set,
)
from cosmicnet_cobaya.sources import SourceGrid, SourcesDeclinedError, base_sources


def cosmology_params(cosmo: Any, names: Sequence[str]) -> dict[str, float]:
    """Values of the network set's parameters for a computed classy object.

    Parameters passed to CLASS are taken as given; H0, h, omega_b, omega_cdm
    and tau_reio are also derived when the cosmology was set another way
    (e.g. with 100*theta_s or z_reio).
    """
    given = dict(cosmo.pars)
    derived_getters = {
        "H0": lambda: 100.0 * cosmo.h(),
        "h": cosmo.h,
        "omega_b": cosmo.omega_b,
        "omega_cdm": lambda: cosmo.Omega0_cdm() * cosmo.h() ** 2,
        "tau_reio": lambda: cosmo.get_current_derived_parameters(["tau_reio"])["tau_reio"],
    }
    values: dict[str, float] = {}
    for name in names:
        if name in given:
            values[name] = float(given[name])
        elif name in derived_getters:
            values[name] = float(derived_getters[name]())
        else:
            try:
                values[name] = float(cosmo.get_current_derived_parameters([name])[name])
            except Exception as error:
                raise NetworkSetError(
                    f"the network set needs parameter {name!r}, which this cosmology "
                    "neither sets nor derives"
                ) from error
    return values


class NetworkSourceProvider:
    """Sources from trained networks, on the set's k grid and CLASS's tau sampling.

    One batched NumPy forward pass per network per evaluation.  ``last_timings``
    holds the time of the features, the forward passes and the assembly.
    """

    def __init__(self, directory: str | Path, check_domain: bool = True) -> None:
        self.networks: NetworkSet = load_network_set(directory)
        self.check_domain = check_domain
        self.last_timings: dict[str, float] = {}

    @property
    def k(self) -> np.ndarray:
        """The network set's k grid [1/Mpc]."""
        return self.networks.k

    def check_can_serve(self, prepared: PreparedPerturbations) -> None:
        """Raise NetworkSetError when the set lacks a source or the k range."""
        metadata = self.networks.metadata
        missing = [name for name in prepared.source_names if name not in metadata.sources]
        if missing:
            raise NetworkSetError(
                f"network set {self.networks.directory} has no network for the sources "
                f"{missing} that the requested output needs (it serves "
                f"{list(metadata.sources)}); train them or request fewer outputs"
            )
        k = self.k
        tolerance = 1e-10 * prepared.k[-1]
        if k[0] > prepared.k[0] + tolerance or k[-1] < prepared.k[-1] - tolerance:
            raise NetworkSetError(
                f"network set {self.networks.directory} covers k in [{k[0]:.4g}, {k[-1]:.4g}] "
                f"1/Mpc but this output needs [{prepared.k[0]:.4g}, {prepared.k[-1]:.4g}] "
                "1/Mpc: lower l_max / P_k_max, or train on a wider k grid"
            )

    def domain_violations(self, cosmo: Any, params: dict[str, float]) -> list[str]:
        """Why this point lies outside the set's training domain (empty if inside)."""
        metadata = self.networks.metadata
        return domain_violations(
            metadata.domain,
            metadata.provenance.get("class_precision", {}),
            params,
            dict(cosmo.pars),
            metadata.constraints,
        )

    def sources_for(self, cosmo: Any, prepared: PreparedPerturbations) -> SourceGrid:
        """Predict every source in ``prepared.source_names`` on ``prepared.tau``.

        The domain comes first: a point outside it is declined (CLASS serves it)
        whatever its k range; only an in-domain request the set cannot serve
        (an l_max or P_k_max beyond its k grid) raises NetworkSetError.
        """
        metadata = self.networks.metadata
        start = time.perf_counter()
        params = cosmology_params(cosmo, metadata.param_names)
        if self.check_domain:
            reasons = self.domain_violations(cosmo, params)
            if reasons:
                raise SourcesDeclinedError("outside the training domain: " + "; ".join(reasons))
        self.check_can_serve(prepared)
        features = compute_features(cosmo, prepared.tau, params)
        bases = k_bases(features, self.k)  # float32, shared by every network
        features_time = time.perf_counter() - start
        scaled = derived_sources(prepared.source_names)
        needed = base_sources(prepared.source_names, scaled)
        values: dict[str, np.ndarray] = {}
        tick = time.perf_counter()
        for name in needed:
            # float32, the networks' precision: the move onto CLASS's k list runs in
            # float32 too (twice as fast), and the install converts to double.
            values[name] = self.networks.predict_source(name, features, bases, np.float32)
            # A sum is finite only when every term is (and sums no temporary array).
            if not np.isfinite(np.sum(values[name])):
                raise SourcesDeclinedError(f"the networks of {name} predicted non-finite sources")
        forward_time = time.perf_counter() - tick
        total = time.perf_counter() - start
        self.last_timings = {
            "features": features_time,
            "forward": forward_time,
            "assembly": total - features_time - forward_time,
            "total": total,
        }
        return SourceGrid(k=self.k, values=values, scaled=scaled)
