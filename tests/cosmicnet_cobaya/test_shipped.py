"""Shipped network sets: found by name, or chosen by the theory's extra_args."""

from __future__ import annotations

import json

import pytest

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.networks.network_set import NetworkSetError
from cosmicnet_cobaya.networks.shipped import (
    choose_shipped_set,
    resolve_network_set,
    shipped_sets,
)

LCDM_ARGS = {"N_ur": 2.0328, "N_ncdm": 1, "m_ncdm": 0.06, "non_linear": "hmcode"}
W0WA_ARGS = {"Omega_Lambda": 0, "N_ur": 2.0328, "N_ncdm": 1, "non_linear": "hmcode"}


@pytest.fixture
def two_sets(tmp_path):
    """A shipped-sets folder with the LCDM set's metadata and a w0wa-like variant."""
    data = json.loads((DEFAULT_NETWORKS / "metadata.json").read_text())
    (tmp_path / "lcdm").mkdir()
    (tmp_path / "lcdm" / "metadata.json").write_text(json.dumps(data))
    data["domain"].update({"w0_fld": [-1.4, -0.3], "wa_fld": [-3.0, 1.0], "m_ncdm": [0.02, 0.5]})
    precision = data["provenance"]["class_precision"]
    precision.pop("m_ncdm")
    precision["Omega_Lambda"] = 0
    for entry in data["networks"].values():  # H0 references assume a cosmological constant
        entry.pop("references", None)
    (tmp_path / "w0wa_mnu").mkdir()
    (tmp_path / "w0wa_mnu" / "metadata.json").write_text(json.dumps(data))
    return tmp_path


def test_a_shipped_set_is_found_by_name_and_a_wrong_name_is_refused(tmp_path):
    assert "lcdm" in shipped_sets()
    assert resolve_network_set("lcdm") == DEFAULT_NETWORKS
    assert resolve_network_set(str(DEFAULT_NETWORKS)) == DEFAULT_NETWORKS
    with pytest.raises(NetworkSetError, match=r"neither a shipped set .*lcdm"):
        resolve_network_set("lcmd")


def test_networks_null_picks_the_set_trained_with_these_settings(two_sets):
    assert list(shipped_sets(two_sets)) == ["lcdm", "w0wa_mnu"]  # the default first
    name, path, rejected = choose_shipped_set(LCDM_ARGS, two_sets)
    assert (name, path) == ("lcdm", two_sets / "lcdm") and rejected == {}
    name, path, rejected = choose_shipped_set(W0WA_ARGS, two_sets)
    assert name == "w0wa_mnu" and "m_ncdm unset (trained with 0.06)" in rejected["lcdm"]
    # with m_ncdm fixed at 0.06 and no Omega_Lambda, LCDM fits and is taken first
    assert choose_shipped_set({**LCDM_ARGS}, two_sets)[0] == "lcdm"
    # settings no set was trained with: the default, every set's reasons given
    name, _, rejected = choose_shipped_set({**LCDM_ARGS, "N_ur": 3.046}, two_sets)
    assert name == "lcdm" and set(rejected) == {"lcdm", "w0wa_mnu"}


def test_networks_null_passes_over_an_experimental_set(two_sets):
    """An experimental set fits its settings but is served only when named."""
    path = two_sets / "w0wa_mnu" / "metadata.json"
    data = json.loads(path.read_text())
    data["provenance"]["experimental"] = "TT errors 4x the target"
    path.write_text(json.dumps(data))
    name, _, rejected = choose_shipped_set(W0WA_ARGS, two_sets)
    assert name == "lcdm"
    (reason,) = rejected["w0wa_mnu"]
    assert "experimental (TT errors 4x the target)" in reason
    assert "networks: w0wa_mnu" in reason
    assert resolve_network_set("w0wa_mnu", two_sets) == two_sets / "w0wa_mnu"


def test_classnet_names_the_set_it_uses(caplog):
    """ClassNet's `networks:` takes a shipped set's name; with null it says what it picked."""
    import logging
    from types import SimpleNamespace

    from cobaya.log import LoggedError

    from cosmicnet_cobaya.classnet import ClassNet

    log = logging.getLogger("test.shipped")
    theory = SimpleNamespace(networks="lcdm", extra_args=dict(LCDM_ARGS), log=log)
    assert ClassNet._network_set_folder(theory) == DEFAULT_NETWORKS
    theory.networks = None
    with caplog.at_level(logging.INFO, logger="test.shipped"):
        assert ClassNet._network_set_folder(theory) == DEFAULT_NETWORKS
    assert "the shipped set 'lcdm' (trained with these extra_args)" in caplog.text
    theory.extra_args = {**W0WA_ARGS}
    with caplog.at_level(logging.INFO, logger="test.shipped"):
        ClassNet._network_set_folder(theory)
    assert "its points fall back to CLASS" in caplog.text
    theory.networks = "no_such_set"
    with pytest.raises(LoggedError):
        ClassNet._network_set_folder(theory)
