"""Training of one network and of a whole network set, with checkpoints and resume.

One batch is one cosmology: all its tau slices (paper section 3.2), or several
(``cosmologies_per_batch``), each weighing the same.  Optionally the weights
are averaged over the steps (``weight_average``, an exponential moving
average); validation, the kept epoch and the saved network then use the
averaged weights.  After each
epoch the validation loss is computed and a checkpoint (model with optimizer
state, history, epoch) is written, so an interrupted training resumes where it
stopped.  Seeds are fixed; the order of cosmologies in each epoch depends only
on the seed and the epoch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.atomic import atomic_write, atomic_write_text
from cosmicnet_cobaya.networks.inputs import SCALE_NAMES, fit_input_normalisation
from cosmicnet_cobaya.networks.normalisation import InputNormalisation, OutputTransform
from training.configuration.networks import NetworkConfig
from training.learning.batches import (
    Batch,
    BatchCache,
    CosmologySet,
    make_batch,
    padded,
    served_rows,
    stacked,
    with_line_of_sight,
)
from training.learning.line_of_sight import (
    LineOfSightProjection,
    projected_error,
)
from training.learning.losses import ProjectedSourceLoss

log = logging.getLogger(__name__)


class WeightAverage:
    """Exponential moving average of a model's weights, updated after every step.

    Training on one cosmology per step leaves the raw weights leaning towards
    the last cosmologies seen; their average over the last ~1/(1 - momentum)
    steps leans much less (Polyak averaging).
    """

    def __init__(self, weights: Sequence[np.ndarray], momentum: float) -> None:
        self.momentum = momentum
        self.weights = [np.array(value, dtype=np.float64) for value in weights]

    def update(self, weights: Sequence[np.ndarray]) -> None:
        """Move the average towards ``weights``."""
        for average, value in zip(self.weights, weights, strict=True):
            average *= self.momentum
            average += (1.0 - self.momentum) * value

    def as_model_weights(self, like: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The averaged weights in the dtypes of ``like``."""
        return [a.astype(w.dtype) for a, w in zip(self.weights, like, strict=True)]


def fit_normalisation(data: CosmologySet) -> InputNormalisation:
    """Input coefficients over the training set."""
    return fit_input_normalisation([data.features(i) for i in range(len(data))], data.param_names)


def fit_output(data: CosmologySet, config: NetworkConfig) -> OutputTransform:
    """Output coefficients of the network's source over its rows of the training set."""
    blocks = (
        np.asarray(data.target(i, config.source))[served_rows(data.features(i), config)]
        for i in range(len(data))
    )
    return OutputTransform.fit(
        config.output_transform,
        (b for b in blocks if b.shape[0]),
        config.output_std_floor,
        config.output_std_cap,
    )


def retarget_output_layer(model: Any, old: OutputTransform, new: OutputTransform) -> None:
    """Rewrite the linear output layer so that ``model`` predicts in ``new``'s units.

    The physical source ``old.inverse(y)`` is unchanged: with S = y s + m for
    both affine kinds, the new output is (y s + m - m') / s', an affine map
    per k folded into the output layer's kernel and bias.  Lets a fine-tuning
    run switch to another affine normalisation (e.g. per k, or refitted on
    more data) without losing what the network learnt.
    """
    if not (old.is_affine and new.is_affine):
        raise ValueError(
            f"cannot carry a network from output transform {old.kind!r} to {new.kind!r}: "
            "only affine and affine_k are linear maps (train this network from scratch)"
        )
    layer = model.get_layer("output")
    kernel, bias = layer.get_weights()
    n_k = kernel.shape[1]
    old_std = np.broadcast_to(old.std, (n_k,))
    old_mean = np.broadcast_to(old.mean, (n_k,))
    new_std = np.broadcast_to(new.std, (n_k,))
    new_mean = np.broadcast_to(new.mean, (n_k,))
    scale = old_std / new_std
    layer.set_weights(
        [
            (kernel * scale).astype(kernel.dtype),
            ((bias * old_std + old_mean - new_mean) / new_std).astype(bias.dtype),
        ]
    )


def _configure_devices() -> str:
    """Name the device Keras trains on (any backend); TensorFlow grows GPU memory as needed."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        count = len(gpus)
    elif backend == "jax":
        import jax

        count = sum(device.platform == "gpu" for device in jax.devices())
    elif backend == "torch":
        import torch

        count = torch.cuda.device_count()
    else:
        count = 0
    device = f"GPU ({count})" if count else "CPU"
    log.info("training on %s with the %s backend of Keras", device, backend)
    return device


def _progress(total: int, description: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not enabled, leave=False, unit="cosmo")


def validation_scores(
    model: Any,
    data: CosmologySet,
    batch_of: Callable[[CosmologySet, int], Batch],
    projections: Sequence[LineOfSightProjection] = (),
) -> tuple[float, list[float]]:
    """Mean over the cosmologies of ``data`` of the per-cosmology MSE and of
    the line-of-sight projected error for each of ``projections`` (one forward pass each)."""
    losses, projected = [], []
    for index in range(len(data)):
        batch = batch_of(data, index)
        if batch.target.shape[0] == 0:
            continue
        inputs, _, _ = padded(batch)
        prediction = np.asarray(model.predict_on_batch(inputs))[: batch.target.shape[0]]
        error = prediction - batch.target
        losses.append(float(np.mean(error**2)))
        projected.append(
            [
                projected_error(
                    error, batch.line_of_sight, data.k, projection, batch.spectrum_weights
                )
                for projection in projections
            ]
        )
    if not losses:
        raise ValueError("no validation cosmology has a tau slice in the network's range")
    return float(np.mean(losses)), [float(mean) for mean in np.mean(projected, axis=0)]


def validation_loss(
    model: Any, data: CosmologySet, batch_of: Callable[[CosmologySet, int], Batch]
) -> float:
    """Mean over the cosmologies of ``data`` of the per-cosmology MSE."""
    return validation_scores(model, data, batch_of)[0]


def validation_projections(config: NetworkConfig) -> tuple[LineOfSightProjection, ...]:
    """The projections whose errors the training objective adds: the configured
    one and, with ``projected_loss_frequency_weight``, the frequency projection."""
    if not config.projected_loss_weight:
        return ()
    if config.projected_loss_frequency_weight:
        return config.projection, LineOfSightProjection(config.projected_loss_frequencies)
    return (config.projection,)


AVERAGE_FILE = "average.weights.h5"
"""Checkpoint of the averaged weights (``weight_average`` > 0)."""


def _weight_average(
    model: Any, config: NetworkConfig, checkpoint_dir: Path, resumed: bool
) -> WeightAverage | None:
    """The running weight average of a run, restored from its checkpoint when resuming."""
    if not config.weight_average:
        return None
    raw = model.get_weights()
    path = checkpoint_dir / AVERAGE_FILE
    if resumed and path.is_file():
        model.load_weights(path)
        average = WeightAverage(model.get_weights(), config.weight_average)
        model.set_weights(raw)
        return average
    return WeightAverage(raw, config.weight_average)


def set_trainable_layers(model: Any, names: Sequence[str], network: str) -> None:
    """Train only the layers ``names`` (all when empty); the others keep their weights.

    Every layer's flag is set, so a network saved from a head-only run trains in
    full when a later run starts from it with ``trainable_layers`` unset.
    """
    known = {layer.name for layer in model.layers if layer.weights}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"{network}.trainable_layers: no layer(s) {unknown} with weights in this network; "
            f"its layers are {sorted(known)}"
        )
    for layer in model.layers:
        layer.trainable = not names or layer.name in names
    if names:
        log.info("%s: training only %s, the other layers frozen", network, ", ".join(names))


def train_network(
    name: str,
    config: NetworkConfig,
    training: CosmologySet,
    validation: CosmologySet,
    norm: InputNormalisation,
    transform: OutputTransform,
    checkpoint_dir: Path,
    epochs: int | None = None,
    progress: bool = True,
    initial_model: Path | None = None,
    cache_bytes: int = 0,
    initial_transform: OutputTransform | None = None,
) -> tuple[Any, dict[str, list[float]]]:
    """Train (or resume) one network; returns the Keras model and its history.

    The learning rate is ``config.learning_rate * config.learning_rate_decay**epoch``,
    rising linearly over the first ``config.learning_rate_warmup_steps`` steps of a new run.
    ``initial_model`` (a ``.keras`` file) replaces the random initial weights;
    when it was trained for another affine output transform
    (``initial_transform``), its output layer is rewritten for ``transform``.
    Up to ``cache_bytes`` of batches stay in memory between epochs.
    The returned model is the one of the epoch with the lowest validation loss
    (with ``config.weight_average``, its averaged weights).
    History keys: ``loss`` (mean training loss per epoch), ``val_loss``,
    ``seconds`` (wall time per epoch), ``learning_rate``, ``best_epoch`` (1-based)
    and, when averaging, ``val_loss_unaveraged`` (the raw weights' validation MSE).
    With the projected loss, ``val_loss`` is the training objective, MSE plus
    ``projected_loss_weight`` times ``val_projected`` (plus
    ``projected_loss_frequency_weight`` times ``val_frequency_projected``), and
    ``val_mse`` its MSE part.
    """
    import keras

    epochs = config.epochs if epochs is None else epochs
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    model, history, start = _start_model(
        name, config, training.k, norm, transform, checkpoint_dir, epochs,
        initial_model, initial_transform,
    )  # fmt: skip

    def build(data: CosmologySet, index: int) -> Batch:
        return make_batch(data, index, config, norm, transform)

    batch_of = BatchCache(build, cache_bytes)
    projections = validation_projections(config)
    average = _weight_average(model, config, checkpoint_dir, resumed=start > 0)
    # The warmup belongs to a run's first steps; a resumed run has its Adam state.
    warmup = _Warmup(config.learning_rate_warmup_steps, done=start > 0)
    for epoch in range(start, epochs):
        keras.utils.set_random_seed(config.seed + 7919 * (epoch + 1))
        rate = config.learning_rate * config.learning_rate_decay**epoch
        model.optimizer.learning_rate.assign(rate)
        tick = time.perf_counter()
        label = f"{name} epoch {epoch + 1}/{epochs}"
        losses = _train_epoch(model, training, batch_of, config, epoch, rate, warmup, average,
                              label, progress)  # fmt: skip
        raw_weights = model.get_weights()
        if average is not None:
            history.setdefault("val_loss_unaveraged", []).append(
                validation_loss(model, validation, batch_of)
            )
            model.set_weights(average.as_model_weights(raw_weights))
        val, notes = _validation_objective(model, validation, batch_of, projections, config,
                                           history)  # fmt: skip
        history["loss"].append(float(np.mean(losses)))
        history["val_loss"].append(val)
        history["seconds"].append(time.perf_counter() - tick)
        history.setdefault("learning_rate", []).append(rate)
        log.info(
            "%s: loss %.4g, val_loss %.4g%s (%.1f s)", label, history["loss"][-1], val,
            f" ({', '.join(notes)})" if notes else "", history["seconds"][-1],
        )  # fmt: skip
        _save_epoch(model, checkpoint_dir, history, epoch, average, raw_weights)
    return _final_model(name, model, history, average, checkpoint_dir), history


@dataclass
class _Warmup:
    """Linear learning-rate warmup over a run's first ``steps`` steps."""

    steps: int
    done: bool = False
    taken: int = 0

    def rate(self, rate: float) -> float | None:
        """The warmed-up rate of the next step, or None once the warmup is over."""
        if self.done or self.taken >= self.steps:
            return None
        self.taken += 1  # the last warmup step reaches the epoch's rate itself
        return rate * self.taken / self.steps


def _start_model(
    name: str,
    config: NetworkConfig,
    k: np.ndarray,
    norm: InputNormalisation,
    transform: OutputTransform,
    checkpoint_dir: Path,
    epochs: int,
    initial_model: Path | None,
    initial_transform: OutputTransform | None,
) -> tuple[Any, dict[str, list[float]], int]:
    """The model, history and first epoch: resumed from the checkpoint, or new."""
    import keras

    from training.learning.models import build_model, compile_model

    state_path, model_path = checkpoint_dir / "state.json", checkpoint_dir / "model.keras"
    if state_path.is_file() and model_path.is_file():
        state = json.loads(state_path.read_text())
        log.info("%s: resuming after epoch %d/%d", name, int(state["epoch"]), epochs)
        return keras.models.load_model(model_path), state["history"], int(state["epoch"])
    if initial_model is not None:
        log.info("%s: starting from the weights of %s", name, initial_model)
        model = keras.models.load_model(initial_model, compile=False)
        if initial_transform is not None and initial_transform.to_dict() != transform.to_dict():
            log.info("%s: output layer rewritten from the %s to the %s output transform",
                     name, initial_transform.kind, transform.kind)  # fmt: skip
            retarget_output_layer(model, initial_transform, transform)
    else:
        model = build_model(config, k.size, len(norm.params.names), len(SCALE_NAMES))
    set_trainable_layers(model, config.trainable_layers, name)
    model = compile_model(model, config.learning_rate, _loss(config, k))
    return model, {"loss": [], "val_loss": [], "seconds": [], "learning_rate": []}, 0


def _loss(config: NetworkConfig, k: np.ndarray) -> Any:
    """The projected source loss when configured, else mean squared error."""
    if not config.projected_loss_weight:
        return "mse"
    projection = config.projection
    return ProjectedSourceLoss(
        k,
        config.projected_loss_weight,
        config.cosmologies_per_batch + 1,
        projection.frequencies,
        projection.multipoles,
        projection.k_max,
        projection.spectrum,
        config.projected_loss_frequency_weight,
        config.projected_loss_te_weight,
        projection.shift_weight,
        projection.shift_matrix,
        projection.polarisation,
    )


def _train_epoch(
    model: Any,
    training: CosmologySet,
    batch_of: BatchCache,
    config: NetworkConfig,
    epoch: int,
    rate: float,
    warmup: _Warmup,
    average: Any,
    label: str,
    progress: bool,
) -> list[float]:
    """One pass over the training cosmologies in a seeded order; the step losses."""
    per_step = config.cosmologies_per_batch
    order = np.random.default_rng([config.seed, epoch]).permutation(len(training))
    losses: list[float] = []
    with _progress(len(order), label, progress) as bar:
        for first in range(0, len(order), per_step):
            step = [batch_of(training, int(index)) for index in order[first : first + per_step]]
            bar.update(len(step))
            if not any(batch.target.shape[0] for batch in step):
                continue
            inputs, target, weights = stacked(step)
            warm = warmup.rate(rate)
            if warm is not None:
                model.optimizer.learning_rate.assign(warm)
            if config.projected_loss_weight:
                target = with_line_of_sight(step, target)
            losses.append(float(model.train_on_batch(inputs, target, sample_weight=weights)))
            if average is not None:
                average.update(model.get_weights())
            bar.set_postfix(loss=f"{losses[-1]:.3g}")
    return losses


def _validation_objective(
    model: Any,
    validation: CosmologySet,
    batch_of: BatchCache,
    projections: Any,
    config: NetworkConfig,
    history: dict[str, list[float]],
) -> tuple[float, list[str]]:
    """The validation loss the epoch is judged by (MSE plus the projected terms)."""
    val, projected = validation_scores(model, validation, batch_of, projections)
    notes = []
    if projected:
        history.setdefault("val_mse", []).append(val)
        history.setdefault("val_projected", []).append(projected[0])
        notes += [f"mse {val:.4g}", f"projected {projected[0]:.4g}"]
        val += config.projected_loss_weight * projected[0]
    if len(projected) > 1:
        history.setdefault("val_frequency_projected", []).append(projected[1])
        notes.append(f"frequency projected {projected[1]:.4g}")
        val += config.projected_loss_frequency_weight * projected[1]
    if "val_loss_unaveraged" in history:
        notes.append(f"unaveraged mse {history['val_loss_unaveraged'][-1]:.4g}")
    return val, notes


def _save_epoch(
    model: Any,
    checkpoint_dir: Path,
    history: dict[str, list[float]],
    epoch: int,
    average: Any,
    raw_weights: list[np.ndarray],
) -> None:
    """Checkpoint: the best model so far, the averaged weights, the model and the state."""
    if history["val_loss"][-1] <= min(history["val_loss"]):
        atomic_write(checkpoint_dir / "best.keras", model.save)
    if average is not None:
        atomic_write(checkpoint_dir / AVERAGE_FILE, model.save_weights)
        model.set_weights(raw_weights)
    atomic_write(checkpoint_dir / "model.keras", model.save)
    state = json.dumps({"epoch": epoch + 1, "history": history})
    atomic_write_text(checkpoint_dir / "state.json", state)


def _final_model(
    name: str, model: Any, history: dict[str, list[float]], average: Any, checkpoint_dir: Path
) -> Any:
    """The model of the epoch with the lowest validation loss (averaged weights if used)."""
    import keras

    if average is not None:
        model.set_weights(average.as_model_weights(model.get_weights()))
    best = int(np.argmin(history["val_loss"]))
    history["best_epoch"] = [best + 1]
    best_path = checkpoint_dir / "best.keras"
    if best + 1 != len(history["val_loss"]) and best_path.is_file():
        log.info("%s: keeping epoch %d (lowest validation loss)", name, best + 1)
        model = keras.models.load_model(best_path)
    return model
