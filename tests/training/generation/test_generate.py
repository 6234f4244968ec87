"""``cosmicnet generate`` on configs/smoke.yaml: complete, killed and resumed, failures, MPI."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from helpers import ROOT

from training.cli import main
from training.configuration.family import load_config, parse_config, read_yaml
from training.generation.dataset import open_set
from training.generation.storage import STAGING, cosmology_key

SMOKE = ROOT / "configs" / "smoke.yaml"
COSMICNET = [sys.executable, "-m", "training.cli"]
COMMAND_MPI = [*COSMICNET, "generate", "--no-progress"]

pytestmark = pytest.mark.slow


def _status(out: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["-q", "generate", "--status", str(out), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _set_contents(out: Path, name: str) -> tuple[list[int], np.ndarray]:
    with h5py.File(out / f"{name}.h5", "r") as handle:
        indices = [int(handle["cosmologies"][key].attrs["index"]) for key in handle["cosmologies"]]
        return indices, handle["status"][...]


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and (p.suffix == ".tmp" or STAGING in p.parts)]


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("complete") / "smoke"
    assert main(["generate", str(SMOKE), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    return out


def test_complete_run(complete_run: Path, capsys) -> None:
    config = load_config(SMOKE)
    counts = _status(complete_run, capsys)
    for spec in config.sets:
        assert counts[spec.name] == {
            "size": spec.size,
            "complete": spec.size,
            "failed": 0,
            "pending": 0,
        }
        indices, status = _set_contents(complete_run, spec.name)
        assert sorted(indices) == list(range(spec.size))
        assert np.all(status == 1)
    assert _leftovers(complete_run) == []
    points = {}
    with open_set(complete_run / "training.h5") as data:
        assert len(data) == 4
        meta = data.metadata
        assert meta["classy_version"] == "3.4.1.0"
        assert json.loads(meta["seeds_json"]) == {s.name: s.seed for s in config.sets}
        assert json.loads(meta["box_fractions_json"]) == {s.name: 1.0 for s in config.sets}
        assert json.loads(meta["class_precision_json"])["k_step_sub"] == 0.2
        assert data.config["family"] == "lcdm_smoke"
        assert meta["p_over_t2_maxrel"] < 1e-12
        k = data.k
        assert np.all(np.diff(k) > 0)
        # Latin hypercube: one point per stratum of every parameter.
        unit = (data.points - meta["param_low"]) / (
            np.array(meta["param_high"]) - meta["param_low"]
        )
        for column in unit.T:
            assert sorted(np.floor(column * 4).astype(int)) == [0, 1, 2, 3]
        for item in data:
            assert set(item.targets) == set(config.targets)
            for value in item.targets.values():
                assert value.shape == (item.tau.size, k.size)
                assert value.dtype == np.float32
                assert np.all(np.isfinite(value))
            assert np.any(item.targets["t2"] != 0)
            # The reionization bump of S_T2: stored tau points and signal around tau_reio.
            tau_reio = item.features.scalars["conf_time_reio"]
            window = np.abs(item.tau - tau_reio) < 0.3 * tau_reio
            assert window.sum() >= 10
            assert np.max(np.abs(item.targets["t2"][window])) > 0
        points["training"] = data.points
    with open_set(complete_run / "validation.h5") as data:
        assert not np.any(np.isin(data.points, points["training"]))


def test_stored_data_equal_class_and_feature_code(complete_run: Path) -> None:
    """Stored inputs equal features.py on a fresh CLASS run; targets equal CLASS's sources."""
    from scipy.interpolate import CubicSpline

    from cosmicnet_cobaya.features import compute_features
    from cosmicnet_cobaya.hook import bridge

    config = load_config(SMOKE)
    with open_set(complete_run / "training.h5") as data:
        item = data.cosmology(2)
        k = data.k
    cosmo = bridge.classy.Class()
    cosmo.set(config.class_settings(item.features.params))
    cosmo.compute(level=["thermodynamics"])
    prepared = bridge.prepare_perturbations(cosmo)
    np.testing.assert_array_equal(item.tau, prepared.tau)
    fresh = compute_features(cosmo, prepared.tau, item.features.params)
    assert fresh.scalars == item.features.scalars
    for name, value in fresh.time.items():
        np.testing.assert_array_equal(item.features.time[name], value)
    # Same recipe, written out here: CLASS's list plus the family k beyond it.
    outside = k[(k < prepared.k[0]) | (k > prepared.k[-1])]
    cosmo.set({"k_output_values": ",".join(repr(float(value)) for value in outside)})
    cosmo.compute(level=["perturbations"])
    k_class, tau, sources = bridge.read_sources(cosmo)
    cosmo.struct_cleanup()
    np.testing.assert_array_equal(tau, item.tau)
    assert np.all(np.isin(outside, k_class))
    for name in config.targets:
        expected = CubicSpline(k_class, sources[name], axis=1)(k)
        stored = item.targets[name].astype(np.float64)
        scale = np.max(np.abs(expected))
        assert np.max(np.abs(stored - expected)) <= 1e-6 * scale, name


def _wait_for_staged(out: Path, count: int, timeout: float = 120.0) -> list[Path]:
    """The staged cosmology files of a running generate, once ``count`` exist (or at timeout)."""
    deadline = time.monotonic() + timeout
    staged: list[Path] = []
    while time.monotonic() < deadline and len(staged) < count:
        time.sleep(0.05)
        staged = list((out / STAGING).rglob("c*.h5")) if (out / STAGING).exists() else []
    return staged


def test_killed_run_resumes_without_duplicates(tmp_path: Path, capsys) -> None:
    out = tmp_path / "killed"
    command = [*COSMICNET, "generate", str(SMOKE), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    staged = _wait_for_staged(out, count=2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert len(staged) >= 2, "the run did not store anything before the deadline"
    counts = _status(out, capsys)
    done = sum(row["complete"] for row in counts.values())
    assert 2 <= done < 8
    for path in (out / STAGING).rglob("c*.h5"):
        with h5py.File(path, "r") as handle:
            assert handle["cosmology"].attrs["complete"] == 1
    assert main(["generate", str(SMOKE), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    config = load_config(SMOKE)
    for spec in config.sets:
        indices, status = _set_contents(out, spec.name)
        assert sorted(indices) == list(range(spec.size)), spec.name
        assert np.all(status == 1)
    assert _leftovers(out) == []


def test_ctrl_c_stops_the_run_and_stores_what_is_done(tmp_path: Path, capsys) -> None:
    """SIGINT to the whole process group (Ctrl-C): a prompt exit, finished points stored."""
    out = tmp_path / "interrupted"
    command = [*COSMICNET, "generate", str(SMOKE), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # a shell's background job inherits SIGINT ignored; a terminal's Ctrl-C does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_staged(out, count=1)
    os.killpg(process.pid, signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the run did not stop within 60 s of Ctrl-C")
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert b"interrupted after" in stderr
    counts = _status(out, capsys)
    assert 1 <= sum(row["complete"] for row in counts.values()) < 8
    assert _leftovers(out) == []
    assert main(["generate", str(SMOKE), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    assert all(row["pending"] == 0 for row in _status(out, capsys).values())


def test_interrupted_consolidation_is_repaired(complete_run: Path, tmp_path: Path) -> None:
    """Leftovers of a kill during or right after consolidation: no duplicate, no corruption."""
    from training.generation.cosmology import CosmologyResult
    from training.generation.storage import write_staging

    out = tmp_path / "copy"
    shutil.copytree(complete_run, out)
    config = load_config(SMOKE)
    with open_set(out / "training.h5") as data:
        item = data.cosmology(1)
    result = CosmologyResult(
        set_name="training",
        index=1,
        params=item.features.params,
        seconds=1.0,
        scalars=item.features.scalars,
        tau=item.tau,
        time=item.features.time,
        targets=item.targets,
        p_over_t2_maxrel=0.0,
    )
    write_staging(out, result, config)  # killed after the rename, before the clean-up
    (out / "training.h5.tmp").write_bytes(b"\x89HDF half written")  # killed mid-consolidation
    (out / STAGING / "training" / f"{cosmology_key(3)}.h5.tmp").write_bytes(b"partial")
    assert main(["generate", str(SMOKE), "--out", str(out), "--no-progress"]) == 0
    indices, _ = _set_contents(out, "training")
    assert sorted(indices) == [0, 1, 2, 3]
    assert _leftovers(out) == []


def test_class_failure_is_recorded_and_skipped(tmp_path: Path) -> None:
    """A box reaching tau_reio < 0: CLASS cannot reionize there; the run goes on."""
    raw = copy.deepcopy(read_yaml(SMOKE))
    raw["params"]["tau_reio"] = {"prior": {"min": -0.04, "max": 0.06}}
    raw["sets"] = {"training": {"size": 4, "seed": 11}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "failing"
    assert main(["generate", str(path), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    with open_set(out / "training.h5") as data:
        tau_reio = data.points[:, data.param_names.index("tau_reio")]
        failures = data.failures()
        assert set(failures) == set(np.flatnonzero(tau_reio < 0.0017).tolist())
        assert set(data.indices.tolist()) == set(np.flatnonzero(tau_reio >= 0.0017).tolist())
        assert len(failures) >= 1 and len(data) >= 2
        for message in failures.values():
            assert "tau_reio" in message
        assert data.counts()["pending"] == 0
    # Rerunning does not retry recorded failures.
    from training.generation.runner import generate

    summary = generate(parse_config(raw), out, workers=1, progress=False)
    assert summary.computed == 0 and summary.failed == 0


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not available")
def test_two_rank_mpi_run_matches_pool_run(complete_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("mpi4py")
    out = tmp_path / "mpi"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = ["mpirun", "-n", "2", "--oversubscribe", *COMMAND_MPI, str(SMOKE), "--out", str(out)]
    command += ["--limit", "3"]  # rank 1 computes, rank 0 writes
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-2000:]
    with open_set(out / "training.h5") as mpi, open_set(complete_run / "training.h5") as pool:
        assert mpi.indices.tolist() == [0, 1, 2]
        assert mpi.counts() == {"complete": 3, "failed": 0, "pending": 1}
        np.testing.assert_array_equal(mpi.k, pool.k)
        for a in mpi:
            b = pool.cosmology(a.index)
            np.testing.assert_array_equal(a.tau, b.tau)
            for target in a.targets:
                np.testing.assert_array_equal(a.targets[target], b.targets[target])


def test_k_grids_equal_up_to_rounding_are_the_same_grid() -> None:
    """CLASS may build a family's k grid anew with last-bit differences (fine-tuning)."""
    from training.generation.kgrid import same_k_grid

    k = np.geomspace(7e-6, 7.9, 866)
    assert same_k_grid(k, np.nextafter(k, np.inf))
    assert not same_k_grid(k, k * (1 + 1e-9))
    assert not same_k_grid(k, k[:-1])


def test_set_window_computes_only_those_points(tmp_path: Path, capsys) -> None:
    """``--sets training:1-3`` computes points 1 and 2 of the training set, nothing else."""
    out = tmp_path / "window"
    argv = ["generate", str(SMOKE), "--out", str(out), "--workers", "2", "--no-progress"]
    assert main([*argv, "--sets", "training:1-3"]) == 0
    indices, status = _set_contents(out, "training")
    assert sorted(indices) == [1, 2]
    assert status.tolist() == [0, 1, 1, 0]
    counts = _status(out, capsys)
    assert counts["validation"]["complete"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training:3-1", "NAME:START-STOP"),
        ("training:a-3", "NAME:START-STOP"),
        ("training:", "NAME:START-STOP"),
        (":3", "NAME:START-STOP"),
        ("training:2-2", "NAME:START-STOP"),
        ("training:2-9", "the set has 4 points"),
    ],
)
def test_bad_set_window_is_refused(tmp_path: Path, caplog, text: str, message: str) -> None:
    out = tmp_path / "x"
    assert main(["generate", str(SMOKE), "--out", str(out), "--sets", text]) == 2
    assert message in caplog.text
    assert not out.exists()


@pytest.mark.slow
def test_a_point_past_the_time_limit_is_retried_then_recorded_as_failed(tmp_path: Path, capsys):
    """A worker stuck on a point loses it; the run goes on and records the failure."""
    out = tmp_path / "timeout"
    argv = ["generate", str(SMOKE), "--out", str(out), "--workers", "2", "--sets", "test:1"]
    assert main([*argv, "--point-timeout", "0.01", "--no-progress"]) == 0
    counts = _status(out, capsys)
    assert counts["test"]["failed"] == 1 and counts["test"]["complete"] == 0
    with h5py.File(out / "test.h5", "r") as handle:
        message = handle["failures/message"].asstr()[0]
    assert "time limit of 0.01 s" in message
    assert main([*argv, "--retry-failed", "--no-progress"]) == 0
    assert _status(out, capsys)["test"]["complete"] == 1


@pytest.mark.slow
def test_a_worker_killed_mid_point_loses_only_that_point(tmp_path: Path, capsys) -> None:
    """SIGKILL to one worker while it computes: its point is retried, the run completes."""
    import psutil

    out = tmp_path / "worker_killed"
    command = [*COSMICNET, "generate", str(SMOKE), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    parent = psutil.Process(process.pid)
    _wait_for_staged(out, count=1)  # from the first stored point on, both workers compute
    workers = [p for p in parent.children(recursive=True) if "spawn" in " ".join(p.cmdline())]
    assert workers, "no worker process running"
    workers[0].kill()
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the run hung after a worker was killed")
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"worker died" in stderr and b"trying it once more" in stderr
    counts = _status(out, capsys)
    assert all(row["pending"] == 0 and row["failed"] == 0 for row in counts.values())
