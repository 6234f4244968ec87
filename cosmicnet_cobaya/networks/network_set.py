"""A network set on disk: one ``.keras`` model per source and ``metadata.json``.

Layout of a network-set directory::

    metadata.json      format, k grid, input normalisation, per-network entries
    t0.keras ...       one Keras model per network (native .keras format)

``metadata.json`` carries ``format: cosmicnet-network-set`` and
``format_version``; a set written by another format version is refused with a
message naming both versions.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmicnet_cobaya.atomic import atomic_write_text
from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.features import KBases
from cosmicnet_cobaya.networks.correction import CorrectionError, ResidualCorrection, check_fits
from cosmicnet_cobaya.networks.domain import LinearConstraint
from cosmicnet_cobaya.networks.forward import ForwardModelError, NumpyModel, load_numpy_model
from cosmicnet_cobaya.networks.hubble import FlatLambdaExpansion
from cosmicnet_cobaya.networks.inputs import InputSpec, assemble_inputs
from cosmicnet_cobaya.networks.normalisation import InputNormalisation, OutputTransform
from cosmicnet_cobaya.networks.references import (
    Reference,
    at_reference,
    check_entry,
    check_set,
    mean_of,
    parse_references,
    parse_tau_reio_references,
)
from cosmicnet_cobaya.networks.time_ranges import (
    FULL_RANGE,
    TauRange,
    check_no_overlap,
    consecutive_rows,
    covers_all,
    parse_tau_range,
    rows_in_range,
)

if TYPE_CHECKING:
    from cosmicnet_cobaya.features import CosmologyFeatures

log = logging.getLogger(__name__)

FORMAT_NAME = "cosmicnet-network-set"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
DERIVED_SOURCES: dict[str, tuple[str, float]] = {"p": ("t2", math.sqrt(6.0))}
"""Sources that are another network's output times a constant: p = sqrt(6) t2."""


def derived_sources(names: Sequence[str]) -> dict[str, tuple[str, float]]:
    """The sources among ``names`` that are derived, ``name -> (base, factor)``."""
    return {name: DERIVED_SOURCES[name] for name in names if name in DERIVED_SOURCES}


class NetworkSetError(CosmicNetError, RuntimeError):
    """A network set is missing, corrupt, or cannot serve the requested output."""


@dataclass(frozen=True)
class NetworkEntry:
    """One network of a set: its file, inputs, output transform and records.

    ``source`` is the CLASS source it predicts (default: its name) and
    ``tau_range`` the slices it serves, in units of tau_rec.  With
    ``references`` its prediction is the mean of its predictions at those
    values of tau_reio and H0, rescaled (:mod:`~cosmicnet_cobaya.networks.references`).
    ``correction`` describes a fitted residual correction added to its output
    (:mod:`~cosmicnet_cobaya.networks.correction`; empty: none).
    """

    name: str
    file: str
    inputs: InputSpec
    output: OutputTransform
    architecture: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    tau_range: TauRange = FULL_RANGE
    references: tuple[Reference, ...] = ()
    correction: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", self.name)
        if self.references:
            check_entry(self.source, self.tau_range, f"networks.{self.name}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "file": self.file,
            "source": self.source,
            "tau_range": list(self.tau_range),
            "inputs": self.inputs.to_dict(),
            "output": self.output.to_dict(),
            "architecture": self.architecture,
            "history": self.history,
            "selection": self.selection,
            **({"references": [dict(ref) for ref in self.references]} if self.references else {}),
            **({"correction": self.correction} if self.correction else {}),
        }

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> NetworkEntry:
        """Inverse of :meth:`to_dict` (also reads the older ``tau_reio_references``)."""
        where = f"networks.{name}"
        if "references" in data and "tau_reio_references" in data:
            raise ValueError(f"{where} has both references and tau_reio_references: keep one")
        references = parse_references(data.get("references"), f"{where}.references")
        references = references or parse_tau_reio_references(
            data.get("tau_reio_references"), f"{where}.tau_reio_references"
        )
        return cls(
            name=name,
            file=str(data["file"]),
            inputs=InputSpec.from_dict(data["inputs"]),
            output=OutputTransform.from_dict(data["output"]),
            architecture=dict(data.get("architecture", {})),
            history={key: list(value) for key, value in data.get("history", {}).items()},
            selection=dict(data.get("selection", {})),
            source=str(data.get("source", name)),
            tau_range=parse_tau_range(data.get("tau_range"), f"networks.{name}.tau_range"),
            references=references,
            correction=dict(data.get("correction", {})),
        )


@dataclass(frozen=True)
class NetworkSetMetadata:
    """Everything in ``metadata.json``."""

    k: np.ndarray
    param_names: tuple[str, ...]
    normalisation: InputNormalisation
    networks: dict[str, NetworkEntry]
    domain: dict[str, list[float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    """CLASS version and precision, data hash, package version, config."""
    constraints: tuple[LinearConstraint, ...] = ()
    """Bounds on combinations of the varied parameters (e.g. w0_fld + wa_fld)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the format name and version."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "k": self.k.tolist(),
            "param_names": list(self.param_names),
            "normalisation": self.normalisation.to_dict(),
            "domain": self.domain,
            **self._constraints_entry(),
            "provenance": self.provenance,
            "networks": {name: entry.to_dict() for name, entry in self.networks.items()},
        }

    def _constraints_entry(self) -> dict[str, Any]:
        """``{"constraints": [...]}`` when the domain has constraints (else nothing)."""
        if not self.constraints:
            return {}
        return {"constraints": [constraint.to_dict() for constraint in self.constraints]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkSetMetadata:
        """Inverse of :meth:`to_dict`; checks the format name and version."""
        if data.get("format") != FORMAT_NAME:
            raise NetworkSetError(
                f"not a network-set metadata file (format={data.get('format')!r})"
            )
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise NetworkSetError(
                f"network-set format version {version} is not supported by this version of "
                f"cosmicnet_cobaya (it reads version {FORMAT_VERSION}): retrain the set with "
                "`cosmicnet train`, or install the release that wrote it"
            )
        networks = {
            name: NetworkEntry.from_dict(name, entry) for name, entry in data["networks"].items()
        }
        for source, entries in _by_source(networks).items():
            try:
                check_no_overlap({entry.name: entry.tau_range for entry in entries})
            except ValueError as error:
                raise NetworkSetError(f"the networks of source {source}: {error}") from error
        k = np.asarray(data["k"], dtype=float)
        if k.ndim != 1 or k.size < 2 or np.any(np.diff(k) <= 0):
            raise NetworkSetError("the k grid in metadata.json is not an increasing list")
        metadata = cls(
            k=k,
            param_names=tuple(data["param_names"]),
            normalisation=InputNormalisation.from_dict(data["normalisation"]),
            networks=networks,
            domain={name: list(bounds) for name, bounds in data.get("domain", {}).items()},
            provenance=dict(data.get("provenance", {})),
            constraints=tuple(LinearConstraint.from_dict(c) for c in data.get("constraints", [])),
        )
        try:
            metadata.expansion  # noqa: B018 -- checks every network's references
        except ValueError as error:
            raise NetworkSetError(str(error)) from error
        return metadata

    @cached_property
    def expansion(self) -> FlatLambdaExpansion | None:
        """The late-time expansion H0 references need (None when no network has one).

        Raises ``ValueError`` where a network's references do not fit the set
        (:func:`~cosmicnet_cobaya.networks.references.check_set`).
        """
        return check_set(
            {name: entry.references for name, entry in self.networks.items()},
            self.param_names,
            self.domain,
            self.provenance.get("class_precision", {}),
        )

    def write(self, directory: str | Path) -> Path:
        """Write ``metadata.json`` into ``directory`` (atomically)."""
        return atomic_write_text(
            Path(directory) / METADATA_FILE, json.dumps(self.to_dict(), indent=1)
        )

    @property
    def sources(self) -> tuple[str, ...]:
        """Every CLASS source this set predicts at every tau, derived ones included."""
        names = [
            source
            for source, entries in _by_source(self.networks).items()
            if covers_all([entry.tau_range for entry in entries])
        ]
        names += [name for name, (base, _) in DERIVED_SOURCES.items() if base in names]
        return tuple(names)

    def networks_of(self, source: str) -> tuple[NetworkEntry, ...]:
        """The networks that together predict ``source``, earliest range first."""
        return _by_source(self.networks).get(source, ())


def _by_source(networks: Mapping[str, NetworkEntry]) -> dict[str, tuple[NetworkEntry, ...]]:
    grouped: dict[str, list[NetworkEntry]] = {}
    for entry in networks.values():
        grouped.setdefault(entry.source, []).append(entry)
    return {
        source: tuple(sorted(entries, key=lambda entry: entry.tau_range[0]))
        for source, entries in grouped.items()
    }


def read_metadata(directory: str | Path) -> NetworkSetMetadata:
    """Read and validate ``metadata.json`` of a network-set directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NetworkSetError(f"network set {directory} does not exist (or is not a directory)")
    path = directory / METADATA_FILE
    if not path.is_file():
        raise NetworkSetError(f"network set {directory} has no {METADATA_FILE}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NetworkSetError(f"{path} is corrupt: {error}") from error
    try:
        return NetworkSetMetadata.from_dict(data)
    except NetworkSetError as error:
        raise NetworkSetError(f"{path}: {error}") from error
    except (KeyError, TypeError, ValueError) as error:
        raise NetworkSetError(f"{path} is corrupt or incomplete: {error!r}") from error


@dataclass(frozen=True)
class NetworkSet:
    """A loaded network set: metadata and a NumPy model per network."""

    directory: Path
    metadata: NetworkSetMetadata
    models: dict[str, NumpyModel]
    corrections: dict[str, ResidualCorrection] = field(default_factory=dict)
    """Residual corrections by network name (only the networks that have one)."""

    @property
    def k(self) -> np.ndarray:
        """The family k grid every network predicts on [1/Mpc]."""
        return self.metadata.k

    def _rows_served(
        self, entry: NetworkEntry, features: CosmologyFeatures
    ) -> tuple[np.ndarray, slice | None]:
        """Mask over ``features.tau`` of ``entry``'s tau range, and its rows as a slice."""
        mask = rows_in_range(features.tau, features.scalars["tau_rec"], entry.tau_range)
        return mask, consecutive_rows(mask) if np.any(mask) else None

    def predict(
        self, name: str, features: CosmologyFeatures, bases: KBases
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows served by network ``name`` and its physical prediction there.

        Returns the boolean mask over ``features.tau`` of the network's tau range
        and the source (float64, (n_rows, n_k)) on those rows.  ``bases`` are
        :func:`~cosmicnet_cobaya.features.k_bases` of ``features`` on :attr:`k`.
        """
        entry = self.metadata.networks[name]
        mask, rows = self._rows_served(entry, features)
        if rows is None:
            return mask, np.empty((0, self.k.size))
        return mask, self._predict_rows(entry, features, bases, rows)

    def _predict_rows(
        self,
        entry: NetworkEntry,
        features: CosmologyFeatures,
        bases: KBases,
        rows: slice,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        norm = self.metadata.normalisation
        if entry.references:
            values = self._predict_rows_averaged(entry, features.rows(rows), bases.rows(rows), out)
        else:
            inputs = assemble_inputs(features.rows(rows), entry.inputs, norm, bases.rows(rows))
            values = entry.output.inverse(self.models[entry.name](inputs), out=out)
        correction = self.corrections.get(entry.name)
        if correction is not None:
            x = features.tau[rows] / features.scalars["tau_rec"]
            correction.add_to(values, features.params, x)
        return values

    def _predict_rows_averaged(
        self,
        entry: NetworkEntry,
        features: CosmologyFeatures,
        bases: KBases,
        out: np.ndarray | None,
    ) -> np.ndarray:
        """Mean of the rescaled predictions at ``entry.references``."""
        norm = self.metadata.normalisation
        batches, factors = [], []
        for reference in entry.references:
            shifted, factor = at_reference(features, reference, self.metadata.expansion)
            batches.append(assemble_inputs(shifted, entry.inputs, norm, bases))
            factors.append(factor)
        if "k" in batches[0]:
            for batch in batches[1:]:
                batch["k"] = batches[0]["k"]  # one array, so the k branch runs once
        outputs = self.models[entry.name].evaluate_many(batches, shared=("k",))
        predictions = [entry.output.inverse(output) for output in outputs]
        mean = mean_of(predictions, factors)
        if out is None:
            return mean
        out[...] = mean
        return out

    def predict_source(
        self,
        source: str,
        features: CosmologyFeatures,
        bases: KBases,
        dtype: type = np.float64,
    ) -> np.ndarray:
        """Source ``source`` ((n_tau, n_k), ``dtype``) from every network serving it.

        Rows no network serves are NaN.  ``dtype=np.float32`` keeps the networks'
        own precision (inference); float64 is the default.
        """
        values = np.empty((features.tau.size, self.k.size), dtype=dtype)
        served = np.zeros(features.tau.size, dtype=bool)
        for entry in self.metadata.networks_of(source):
            mask, rows = self._rows_served(entry, features)
            if rows is not None:
                self._predict_rows(entry, features, bases, rows, out=values[rows])
                served |= mask
        values[~served] = np.nan
        return values


def load_network_set(directory: str | Path, names: tuple[str, ...] | None = None) -> NetworkSet:
    """Load a network set (all networks, or ``names``) for NumPy inference."""
    directory = Path(directory)
    metadata = read_metadata(directory)
    wanted = tuple(metadata.networks) if names is None else names
    unknown = [name for name in wanted if name not in metadata.networks]
    if unknown:
        raise NetworkSetError(
            f"network set {directory} has no network for {unknown} "
            f"(it has {sorted(metadata.networks)})"
        )
    models: dict[str, NumpyModel] = {}
    for name in wanted:
        entry = metadata.networks[name]
        path = directory / entry.file
        if not path.is_file():
            raise NetworkSetError(f"network set {directory}: model file {entry.file} is missing")
        try:
            model = load_numpy_model(path)
        except ForwardModelError as error:
            raise NetworkSetError(f"network set {directory}: {error}") from error
        n_out = model.output_width
        if n_out is not None and n_out != metadata.k.size:
            raise NetworkSetError(
                f"network set {directory}: {entry.file} predicts {n_out} k values but the "
                f"set's k grid has {metadata.k.size}"
            )
        missing = [group for group in entry.inputs.groups() if group not in model.input_names]
        if missing:
            raise NetworkSetError(
                f"network set {directory}: {entry.file} lacks inputs {missing} named in metadata"
            )
        models[name] = model
    corrections = {
        name: _load_correction(directory, metadata, name)
        for name in wanted
        if metadata.networks[name].correction
    }
    log.debug("loaded network set %s: %s", directory, ", ".join(wanted))
    return NetworkSet(directory, metadata, models, corrections)


def _load_correction(
    directory: Path, metadata: NetworkSetMetadata, name: str
) -> ResidualCorrection:
    """Network ``name``'s residual correction, read and checked against the set."""
    where = f"network set {directory}: networks.{name}.correction"
    try:
        correction = ResidualCorrection.load(directory, metadata.networks[name].correction, where)
        check_fits(correction, metadata.param_names, metadata.k.size)
    except CorrectionError as error:
        raise NetworkSetError(str(error)) from error
    return correction
