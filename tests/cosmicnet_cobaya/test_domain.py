"""The training-domain check of network sets."""

from __future__ import annotations

from cosmicnet_cobaya.networks.domain import domain_violations

RANGES = {"omega_b": [0.021, 0.023], "H0": [65.0, 70.0]}
TRAINED = {"N_ur": 2.0328, "N_ncdm": 1, "m_ncdm": 0.06, "output": "tCl,pCl,lCl,mPk"}
INSIDE = {"omega_b": 0.022, "H0": 67.0}
SETTINGS = {
    **{"N_ur": 2.0328, "N_ncdm": 1, "m_ncdm": "0.06", "output": "tCl", "non_linear": "hmcode"},
    **{"A_s": 2e-9, "n_s": 0.96, "alpha_s": 0.01, "omega_b": 0.022, "H0": 67.0},
}


def test_inside_with_any_primordial_spectrum_and_output():
    assert domain_violations(RANGES, TRAINED, INSIDE, SETTINGS) == []


def test_parameter_out_of_range():
    reasons = domain_violations(RANGES, TRAINED, {**INSIDE, "H0": 71.0}, SETTINGS)
    assert len(reasons) == 1 and "H0" in reasons[0]


def test_changed_or_missing_trained_setting():
    reasons = domain_violations(RANGES, TRAINED, INSIDE, {**SETTINGS, "m_ncdm": 0.1})
    assert len(reasons) == 1 and "m_ncdm" in reasons[0]
    settings = dict(SETTINGS)
    settings.pop("N_ur")
    assert any("N_ur" in reason for reason in domain_violations(RANGES, TRAINED, INSIDE, settings))


def test_untrained_physics_setting():
    reasons = domain_violations(RANGES, TRAINED, INSIDE, {**SETTINGS, "Omega_k": 0.01})
    assert len(reasons) == 1 and "Omega_k" in reasons[0]


def test_other_parameterisation_is_checked_through_derived_values():
    settings = {**SETTINGS, "100*theta_s": 1.04}
    settings.pop("H0")
    assert domain_violations(RANGES, TRAINED, INSIDE, settings) == []


def test_linear_constraint_is_part_of_the_domain_and_of_the_metadata():
    from dataclasses import replace

    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.domain import LinearConstraint
    from cosmicnet_cobaya.networks.network_set import NetworkSetMetadata, read_metadata

    w0wa = LinearConstraint((("w0_fld", 1.0), ("wa_fld", 1.0)), high=-0.1)
    ranges = {"w0_fld": [-1.4, -0.3], "wa_fld": [-3.0, 1.0]}
    inside = {"w0_fld": -0.9, "wa_fld": 0.5}
    assert domain_violations(ranges, {}, inside, dict(inside), [w0wa]) == []
    outside = {"w0_fld": -0.5, "wa_fld": 0.9}
    (reason,) = domain_violations(ranges, {}, outside, dict(outside), [w0wa])
    assert "1*w0_fld + 1*wa_fld = 0.4 outside [None, -0.1]" in reason
    assert LinearConstraint.from_dict(w0wa.to_dict()) == w0wa
    shipped = read_metadata(DEFAULT_NETWORKS)
    assert "constraints" not in shipped.to_dict()  # sets without constraints are unchanged
    constrained = replace(shipped, constraints=(w0wa,))
    assert NetworkSetMetadata.from_dict(constrained.to_dict()).constraints == (w0wa,)
