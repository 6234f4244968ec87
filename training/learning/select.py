"""Hyperparameter selection (paper section 3.2).

For one network: draw candidates from the configured log-uniform ranges, train
each, rank them by final validation loss, keep the best few, and rank those by
the C_l error of eq. 3.2 on the selection set, computed through the hook with
the real CLASS downstream: the candidate predicts its own source, CLASS
integrates the perturbations for every other source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.features import compute_features, k_bases
from cosmicnet_cobaya.hook.bridge import PreparedPerturbations, classy
from cosmicnet_cobaya.networks.network_set import DERIVED_SOURCES, NetworkSet
from cosmicnet_cobaya.sources import ClassSourceProvider, SourceGrid

SPECTRUM_FOR_SOURCE = {"t0": "tt", "t1": "tt", "t2": "ee", "phi_plus_psi": "pp"}
"""The C_l whose error of eq. 3.2 ranks a network of each source."""
PK_SOURCES = ("delta_m", "delta_cb")


class HybridProvider:
    """Exact CLASS sources, except on the rows that the networks ``names`` serve."""

    def __init__(self, network_set: NetworkSet, names: tuple[str, ...]) -> None:
        self.network_set = network_set
        self.names = names
        self.exact = ClassSourceProvider()

    def sources_for(self, cosmo: Any, prepared: PreparedPerturbations) -> SourceGrid:
        """Exact sources with the predicted ones spliced in (on CLASS's k list)."""
        exact = self.exact.sources_for(cosmo, prepared)
        metadata = self.network_set.metadata
        params = {name: float(cosmo.pars[name]) for name in metadata.param_names}
        features = compute_features(cosmo, prepared.tau, params)
        bases = k_bases(features, self.network_set.k)
        values = dict(exact.values)
        k_exact = np.clip(exact.k, self.network_set.k[0], self.network_set.k[-1])
        for name in self.names:
            source = metadata.networks[name].source
            mask, predicted = self.network_set.predict(name, features, bases)
            values[source] = np.array(values[source], copy=True)
            values[source][mask] = CubicSpline(self.network_set.k, predicted, axis=1)(k_exact)
        replaced = {metadata.networks[name].source for name in self.names}
        scaled = {name: rule for name, rule in DERIVED_SOURCES.items() if rule[0] in replaced}
        return SourceGrid(k=exact.k, values=values, scaled=scaled)

    def close(self) -> None:
        """Free the private CLASS object."""
        self.exact.close()


def relative_error(test: np.ndarray, reference: np.ndarray) -> float:
    """Eq. 3.2: sum over l >= 2 of the squared relative difference."""
    test, reference = np.asarray(test)[2:], np.asarray(reference)[2:]
    return float(np.sum(((test - reference) / reference) ** 2))


def _observables(cosmo: Any, l_max: int, k_pk: np.ndarray) -> dict[str, np.ndarray]:
    cls = cosmo.raw_cl(l_max)
    out = {name: np.asarray(cls[name]) for name in ("tt", "ee", "pp") if name in cls}
    out["pk"] = np.array([cosmo.pk_lin(k, 0.0) for k in k_pk])
    return out


@dataclass(frozen=True)
class SpectrumReference:
    """Full-CLASS observables of the selection cosmologies (computed once)."""

    settings: tuple[dict[str, Any], ...]
    observables: tuple[dict[str, np.ndarray], ...]
    l_max: int
    k_pk: np.ndarray


def spectrum_reference(
    settings: list[dict[str, Any]], l_max: int, k_pk: np.ndarray
) -> SpectrumReference:
    """Run full CLASS for every selection cosmology."""
    observables = []
    cosmo = classy.Class()
    for point in settings:
        cosmo.set(point)
        cosmo.compute()
        observables.append(_observables(cosmo, l_max, k_pk))
        cosmo.struct_cleanup()
        cosmo.empty()
    return SpectrumReference(tuple(settings), tuple(observables), l_max, k_pk)


def spectrum_error(
    network_set: NetworkSet, name: str, reference: SpectrumReference
) -> dict[str, float]:
    """Mean over the selection set of the eq. 3.2 error of the network's observable."""
    from cosmicnet_cobaya.hooked_class import HookedClass

    source = network_set.metadata.networks[name].source
    observable = SPECTRUM_FOR_SOURCE.get(source, "pk" if source in PK_SOURCES else None)
    if observable is None:
        raise ValueError(f"no observable ranks a network for source {name!r}")
    provider = HybridProvider(network_set, (name,))
    cosmo = HookedClass()
    cosmo.source_provider = provider
    errors = []
    try:
        for point, ref in zip(reference.settings, reference.observables, strict=True):
            cosmo.set(point)
            cosmo.compute()
            errors.append(
                relative_error(
                    _observables(cosmo, reference.l_max, reference.k_pk)[observable],
                    ref[observable],
                )
            )
            cosmo.struct_cleanup()
            cosmo.empty()
    finally:
        provider.close()
    return {"observable": observable, "cl_error": float(np.mean(errors)), "per_cosmology": errors}


def rank_candidates(records: list[Mapping[str, Any]], keep: int) -> list[Mapping[str, Any]]:
    """The ``keep`` candidates of lowest final validation loss, best first."""
    finite = [item for item in records if np.isfinite(item["val_loss"])]
    return sorted(finite, key=lambda item: item["val_loss"])[:keep]
