"""Run data generation: plan, resume, parallel workers or MPI ranks, one writer.

The writer (the main process, or MPI rank 0) owns every file of the output
folder: it builds or reloads the frozen plan (``family.h5``: config, k grid,
Latin-hypercube points), hands pending points to workers, stores each result
as it arrives (:mod:`training.generation.storage`) and consolidates the set files at the
end.  Workers only compute.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmicnet_cobaya.features import SCALAR_NAMES, TIME_NAMES
from training.configuration.family import FamilyConfig
from training.generation import storage
from training.generation.cosmology import CosmologyResult, compute_cosmology
from training.generation.kgrid import build_k_grid
from training.generation.sampling import sample_set

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
_TAG_TASK, _TAG_RESULT, _TAG_STOP = 1, 2, 3


@dataclass(frozen=True)
class Task:
    """One point to compute."""

    set_name: str
    index: int
    point: dict[str, float]


@contextmanager
def writer_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on an output folder (released by the OS if the process dies)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / LOCK_FILE).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise storage.StorageError(f"another cosmicnet generate is writing {out}") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def precision_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that are CLASS precision parameters."""
    import re

    from cosmicnet_cobaya.hook import bridge

    header = Path(bridge.classy.__file__).parent / "include" / "precisions.h"
    if not header.exists():
        return {}
    names = set(re.findall(r"class_(?:precision|string|type)_parameter\((\w+)", header.read_text()))
    return {key: value for key, value in settings.items() if key in names}


def file_metadata(config: FamilyConfig, record: storage.FamilyRecord) -> dict[str, Any]:
    """Attributes written on every set file."""
    settings = config.class_settings({})
    return {
        "family": config.family,
        "param_names": list(config.param_names),
        "param_low": [p.low for p in config.params],
        "param_high": [p.high for p in config.params],
        "target_names": list(config.targets),
        "scalar_names": list(SCALAR_NAMES),
        "time_names": list(TIME_NAMES),
        "seeds_json": json.dumps({spec.name: spec.seed for spec in config.sets}),
        "sizes_json": json.dumps({spec.name: spec.size for spec in config.sets}),
        "box_fractions_json": json.dumps({spec.name: spec.box_fraction for spec in config.sets}),
        "covmats_json": json.dumps({spec.name: spec.covmat for spec in config.sets}),
        "class_settings_json": json.dumps(settings, sort_keys=True, default=str),
        "class_precision_json": json.dumps(precision_settings(settings), sort_keys=True),
        "classy_version": _version("classy"),
        "project_version": _version("cosmicnet_cobaya"),
        "k_grid_json": json.dumps(
            {"density": config.k_grid.density, "margin": config.k_grid.margin}
        ),
        "storage_json": json.dumps(config.storage.__dict__),
        **{key: value for key, value in record.metadata.items() if key.startswith("kgrid_")},
    }


def prepare_family(config: FamilyConfig, out: Path) -> storage.FamilyRecord:
    """Reload the frozen plan of ``out`` or create it (k grid, LHS points)."""
    fingerprint = storage.config_fingerprint(config)
    record = storage.read_family(out)
    if record is not None:
        if record.config_json != fingerprint:
            raise storage.StorageError(
                f"{out} holds data generated with another config; use a new --out folder"
            )
        return record
    logger.info("new output folder %s: building the family k grid", out)
    grid = build_k_grid(config)
    record = storage.FamilyRecord(
        config_json=fingerprint,
        k=grid.k,
        points={spec.name: sample_set(config, spec) for spec in config.sets},
        metadata={
            "kgrid_centre_class_size": grid.centre_k_size,
            "kgrid_domain_k_min": grid.k_min_domain,
            "kgrid_domain_k_max": grid.k_max_domain,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    storage.write_family(out, record)
    return record


def status(out: Path) -> dict[str, dict[str, int]]:
    """Per set: size, complete, failed, pending (read only, safe during a run)."""
    record = storage.read_family(out)
    if record is None:
        raise storage.StorageError(f"{out} holds no generated data (no {storage.FAMILY_FILE})")
    return {
        name: storage.scan_set(out, name, points.shape[0], clean=False).counts()
        for name, points in record.points.items()
    }


def _run_task(config: FamilyConfig, k: np.ndarray, task: Task) -> CosmologyResult:
    return compute_cosmology(config, k, task.set_name, task.index, task.point)


def _ignore_interrupt() -> None:
    """Pool workers leave Ctrl-C (SIGINT) to the writer, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_results(
    config: FamilyConfig,
    k: np.ndarray,
    tasks: list[Task],
    workers: int,
    point_timeout: float | None = None,
) -> Iterator[CosmologyResult]:
    """Results of ``tasks`` from worker processes, as they finish.

    A worker that dies (a segfault in CLASS, a kill) or runs past
    ``point_timeout`` seconds loses its point, which is tried once more and then
    recorded as failed; the pool replaces the worker and the run goes on.
    """
    from pebble import ProcessExpired, ProcessPool

    os.environ["OMP_NUM_THREADS"] = "1"
    context = multiprocessing.get_context("spawn")
    pool = ProcessPool(
        max_workers=workers, max_tasks=50, initializer=_ignore_interrupt, context=context
    )

    def schedule(task: Task) -> Any:
        return pool.schedule(_run_task, args=(config, k, task), timeout=point_timeout)

    pending = {schedule(task): (task, 0) for task in tasks}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task, attempt = pending.pop(future)
                try:
                    yield future.result()
                except (ProcessExpired, TimeoutError) as error:
                    reason = _lost_point(error, point_timeout)
                    if attempt == 0:
                        logger.warning("%s %d: %s; trying it once more", task.set_name,
                                       task.index, reason)  # fmt: skip
                        pending[schedule(task)] = (task, 1)
                    else:
                        yield CosmologyResult(task.set_name, task.index, dict(task.point),
                                              0.0, error=reason)  # fmt: skip
    finally:
        pool.stop()
        pool.join()


def _lost_point(error: BaseException, point_timeout: float | None) -> str:
    """Why a worker lost its point, for the failure record."""
    if isinstance(error, TimeoutError):
        return f"worker ran past the time limit of {point_timeout:g} s per point"
    return f"worker died ({error})"


def _mpi_results(
    comm: Any, config: FamilyConfig, k: np.ndarray, tasks: list[Task]
) -> Iterator[CosmologyResult]:
    """Rank 0 side: hand one task at a time to whichever rank asks."""
    from mpi4py import MPI

    queue = list(reversed(tasks))
    active = comm.Get_size() - 1
    status_ = MPI.Status()
    while active:
        message = comm.recv(source=MPI.ANY_SOURCE, tag=_TAG_RESULT, status=status_)
        rank = status_.Get_source()
        if message is not None:
            yield message
        if queue:
            comm.send((config, k, queue.pop()), dest=rank, tag=_TAG_TASK)
        else:
            comm.send(None, dest=rank, tag=_TAG_STOP)
            active -= 1


def mpi_worker(comm: Any) -> None:
    """Ranks > 0: ask for tasks, compute, send results back, until told to stop."""
    from mpi4py import MPI

    os.environ["OMP_NUM_THREADS"] = "1"
    status_ = MPI.Status()
    comm.send(None, dest=0, tag=_TAG_RESULT)
    while True:
        payload = comm.recv(source=0, tag=MPI.ANY_TAG, status=status_)
        if status_.Get_tag() == _TAG_STOP:
            return
        comm.send(_run_task(*payload), dest=0, tag=_TAG_RESULT)


DEFAULT_POINT_TIMEOUT = 900.0
"""Seconds a worker may spend on one cosmology (CLASS takes about 10 at most)."""


@dataclass(frozen=True)
class RunSummary:
    """What one invocation did."""

    computed: int
    failed: int
    seconds: float
    counts: dict[str, dict[str, int]]
    interrupted: bool = False
    """Stopped by Ctrl-C (SIGINT); what was done is stored."""


def generate(
    config: FamilyConfig,
    out: Path,
    workers: int,
    comm: Any = None,
    limit: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    on_result: Callable[[CosmologyResult], None] | None = None,
    set_limits: Mapping[str, range] | None = None,
    point_timeout: float | None = DEFAULT_POINT_TIMEOUT,
) -> RunSummary:
    """Generate (or continue generating) every set of ``config`` into ``out``.

    ``comm`` (an mpi4py communicator with more than one rank) makes this the
    writer rank; other ranks must call :func:`mpi_worker`.  ``limit`` stops
    after that many cosmologies (the rest stays pending).  ``set_limits``
    (set name -> range of point indices) works on those sets only, in that
    order, on those points: a smaller run that later runs extend.  A worker that
    dies or runs past ``point_timeout`` seconds on a point has it retried once,
    then recorded as failed (worker processes only, not MPI).
    """
    out = Path(out)
    start = time.perf_counter()
    with writer_lock(out):
        record = prepare_family(config, out)
        metadata = file_metadata(config, record)
        tasks, retried = _plan_tasks(config, out, record, set_limits, retry_failed)
        if limit is not None:
            tasks = tasks[:limit]
        logger.info("%d cosmologies to compute", len(tasks))
        computed = failed = 0
        interrupted = False
        if tasks:
            results = (
                _mpi_results(comm, config, record.k, tasks)
                if comm is not None
                else _pool_results(config, record.k, tasks, workers, point_timeout)
            )
            try:
                with tqdm(
                    total=len(tasks), unit="cosmo", disable=not progress, smoothing=0.1
                ) as bar:
                    for result in results:
                        storage.write_staging(out, result, config)
                        computed += result.ok
                        failed += not result.ok
                        bar.set_postfix(failed=failed, refresh=False)
                        bar.update(1)
                        if on_result is not None:
                            on_result(result)
            except KeyboardInterrupt:
                if comm is not None:
                    raise
                interrupted = True
                logger.warning(
                    "interrupted after %d cosmologies: storing them (rerun to resume)",
                    computed + failed,
                )
            finally:
                results.close()  # stops the pool's workers
        elif comm is not None:
            for _ in _mpi_results(comm, config, record.k, []):
                pass
        counts = _consolidate_all(config, out, record, metadata, retried)
    return RunSummary(
        computed=computed,
        failed=failed,
        seconds=time.perf_counter() - start,
        counts=counts,
        interrupted=interrupted,
    )


def _plan_tasks(
    config: FamilyConfig,
    out: Path,
    record: storage.FamilyRecord,
    set_limits: Mapping[str, range] | None,
    retry_failed: bool,
) -> tuple[list[Task], dict[str, list[int]]]:
    """The points still to compute, set by set, and per set the failed ones retried."""
    specs = list(config.sets)
    if set_limits is not None:
        by_name = {spec.name: spec for spec in specs}
        unknown = sorted(set(set_limits) - set(by_name))
        if unknown:
            raise ValueError(f"unknown set(s) {unknown}: the config has {sorted(by_name)}")
        specs = [by_name[name] for name in set_limits]
    tasks: list[Task] = []
    retried: dict[str, list[int]] = {}
    for spec in specs:
        points = record.points[spec.name]
        state = storage.scan_set(out, spec.name, points.shape[0], clean=True)
        pending = state.pending(retry_failed)
        if set_limits is not None:
            pending = [i for i in pending if i in set_limits[spec.name]]
        retried[spec.name] = [i for i in pending if state.status[i] == storage.STATUS_FAILED]
        for index in pending:
            point = dict(zip(config.param_names, map(float, points[index]), strict=True))
            tasks.append(Task(spec.name, index, point))
    return tasks, retried


def _consolidate_all(
    config: FamilyConfig,
    out: Path,
    record: storage.FamilyRecord,
    metadata: dict[str, Any],
    retried: Mapping[str, list[int]],
) -> dict[str, dict[str, int]]:
    """Fold each set's staging files into its set file; the counts per set."""
    counts = {}
    for name, points in record.points.items():
        state = storage.scan_set(out, name, points.shape[0], clean=False)
        if state.staged or state.failed_staged or not storage.set_path(out, name).exists():
            counts[name] = storage.consolidate(
                out, name, config, record, metadata, retried=retried.get(name, ())
            )
        else:
            counts[name] = state.counts()
    return counts
