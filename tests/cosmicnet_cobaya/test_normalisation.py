"""Input and output normalisation of the networks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosmicnet_cobaya.networks.normalisation import OutputTransform, Standardiser


@pytest.mark.parametrize("kind", ["affine", "affine_k", "log_abs", "asinh"])
def test_output_transform_round_trip(kind):
    rng = np.random.default_rng(1)
    blocks = [-np.exp(rng.normal(size=(5, 7)) * 3) for _ in range(3)]
    transform = OutputTransform.fit(kind, blocks)
    restored = OutputTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    for block in blocks:
        y = restored.forward(block)
        np.testing.assert_allclose(restored.inverse(y), block, rtol=1e-12)
    y = restored.forward(blocks[0]).astype(np.float32)
    out = np.full((9, 7), np.nan)
    written = restored.inverse(y, out=out[2:7])
    assert np.shares_memory(written, out)
    np.testing.assert_array_equal(out[2:7], restored.inverse(y))  # the same, in place
    assert np.all(np.isnan(out[:2])) and np.all(np.isnan(out[7:]))
    stacked = np.concatenate([transform.forward(b) for b in blocks])
    assert abs(stacked.mean()) < 1e-10
    assert stacked.std() == pytest.approx(1.0, rel=1e-10)


def test_affine_k_std_floor_bounds_the_weights_of_vanishing_k():
    rng = np.random.default_rng(2)
    scale = np.geomspace(1.0, 1e-6, 9)  # a source damped by six decades across k
    blocks = [rng.normal(size=(20, 9)) * scale for _ in range(3)]
    plain = OutputTransform.fit("affine_k", blocks)
    overall = float(OutputTransform.fit("affine", blocks).std)
    floored = OutputTransform.fit("affine_k", blocks, std_floor=0.01)
    assert plain.std.min() < 1e-5 * plain.std.max()
    np.testing.assert_allclose(floored.std, np.maximum(plain.std, 0.01 * overall))
    np.testing.assert_allclose(floored.inverse(floored.forward(blocks[0])), blocks[0], atol=1e-15)
    clipped = OutputTransform.fit("affine_k", blocks, std_floor=0.01, std_cap=0.5)
    np.testing.assert_allclose(clipped.std, np.clip(plain.std, 0.01 * overall, 0.5 * overall))
    assert clipped.std.max() < plain.std.max()
    with pytest.raises(ValueError, match="affine_k"):
        OutputTransform.fit("affine", blocks, std_floor=0.01)
    with pytest.raises(ValueError, match="std_floor <= std_cap"):
        OutputTransform.fit("affine_k", blocks, std_floor=0.5, std_cap=0.1)


def test_log_abs_refuses_sign_change():
    with pytest.raises(ValueError, match="one sign"):
        OutputTransform.fit("log_abs", [np.array([[1.0, -2.0]])])


def test_standardiser_round_trip():
    samples = [{"a": 1.0, "b": 10.0}, {"a": 3.0, "b": 30.0}]
    fitted = Standardiser.fit(("a", "b"), samples)
    np.testing.assert_allclose(fitted.apply({"a": 3.0, "b": 10.0}), [1.0, -1.0])
    restored = Standardiser.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(
        restored.apply({"a": 2.5, "b": 7.0}), fitted.apply({"a": 2.5, "b": 7.0})
    )
    with pytest.raises(KeyError, match="missing"):
        fitted.apply({"a": 1.0})
