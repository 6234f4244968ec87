"""Keras builders of the CosmicNet networks (paper figure 2, Tables 2-4).

Branches: the time inputs through dense layers (LeakyReLU) whose first layer
skips to the output layer; one shallow dense layer each for the parameters and
the scales; Conv1D (ReLU) + max-pooling branches over the k-dependent bases;
central dense layers (LeakyReLU); a linear output of one value per k.
"""

from __future__ import annotations

from typing import Any

import keras

from training.configuration.networks import NetworkConfig


def _leaky(x: keras.KerasTensor, slope: float, name: str) -> keras.KerasTensor:
    return keras.layers.LeakyReLU(negative_slope=slope, name=name)(x)


def build_model(config: NetworkConfig, n_k: int, n_params: int, n_scales: int) -> keras.Model:
    """The network of ``config`` for a k grid of ``n_k`` values."""
    slope = config.leaky_slope
    inputs: list[keras.KerasTensor] = []
    central: list[keras.KerasTensor] = []
    skip = None
    if config.time_inputs:
        time = keras.Input((len(config.time_inputs),), name="time")
        inputs.append(time)
        x = time
        for index, units in enumerate(config.time_dense, start=1):
            x = _leaky(
                keras.layers.Dense(units, name=f"time_dense{index}")(x), slope, f"time_act{index}"
            )
            if index == 1:
                skip = x
        central.append(x)
    for group, size, units in (
        ("params", n_params, config.params_dense),
        ("scales", n_scales, config.scales_dense),
    ):
        if not getattr(config, group):
            continue
        tensor = keras.Input((size,), name=group)
        inputs.append(tensor)
        if units:
            tensor = _leaky(
                keras.layers.Dense(units, name=f"{group}_dense")(tensor), slope, f"{group}_act"
            )
        central.append(tensor)
    if config.k_bases:
        bases = keras.Input((n_k, len(config.k_bases)), name="k")
        inputs.append(bases)
        for b, branch in enumerate(config.conv_branches, start=1):
            x = bases
            for c, layer in enumerate(branch, start=1):
                x = keras.layers.Conv1D(
                    layer.filters,
                    layer.kernel,
                    strides=layer.stride,
                    padding="same",
                    activation="relu",
                    name=f"conv{b}_{c}",
                )(x)
                pool = min(layer.pool, x.shape[1])
                if pool > 1:
                    x = keras.layers.MaxPooling1D(pool, name=f"pool{b}_{c}")(x)
            central.append(keras.layers.Flatten(name=f"flatten{b}")(x))
    x = central[0] if len(central) == 1 else keras.layers.Concatenate(name="central_in")(central)
    for index, units in enumerate(config.central_dense, start=1):
        x = _leaky(
            keras.layers.Dense(units, name=f"central_dense{index}")(x), slope, f"central_act{index}"
        )
    if config.time_skip and skip is not None:
        x = keras.layers.Concatenate(name="skip")([x, skip])
    output = keras.layers.Dense(n_k, name="output")(x)
    return keras.Model(inputs=inputs, outputs=output, name="cosmicnet")


def compile_model(model: keras.Model, learning_rate: float, loss: Any = "mse") -> keras.Model:
    """Adam and, by default, the mean squared error of eq. 3.1 (per k, averaged)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss)
    return model
