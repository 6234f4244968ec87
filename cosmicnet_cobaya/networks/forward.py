"""A pure NumPy forward pass of a Keras functional model saved as ``.keras``.

The architecture is read from the archive's ``config.json`` and the weights
from its ``model.weights.h5`` (h5py), so inference needs no TensorFlow and
builds no graph per call.  Only the layers the CosmicNet builders use are
supported; anything else is refused with a clear error at load time.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.lib.stride_tricks import as_strided

from cosmicnet_cobaya.errors import CosmicNetError


class ForwardModelError(CosmicNetError, ValueError):
    """The .keras archive cannot be read or uses an unsupported layer."""


def _snake_case(name: str) -> str:
    """Keras's own rule for the weight-file group of a layer class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _leaky_relu(slope: float) -> Callable[[np.ndarray], np.ndarray]:
    factor = np.float32(slope)

    def as_maximum(x: np.ndarray) -> np.ndarray:
        # For 0 <= slope <= 1, max(x, slope x): no np.where mask and copies.
        out = x * factor
        return np.maximum(out, x, out=out)

    def as_where(x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0.0, x, x * factor)

    return as_maximum if 0.0 <= slope <= 1.0 else as_where


def _activation(spec: Any, in_place: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The activation function; ``in_place`` lets it overwrite its (fresh) argument."""
    name = spec if isinstance(spec, str) else (spec or {}).get("config", {}).get("name")
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "linear": lambda x: x,
        "relu": (lambda x: np.maximum(x, 0.0, out=x))
        if in_place
        else (lambda x: np.maximum(x, 0.0)),
        "tanh": np.tanh,
        "leaky_relu": _leaky_relu(0.2),
    }
    if name is None:
        return table["linear"]
    if name not in table:
        raise ForwardModelError(f"unsupported activation {name!r}")
    return table[name]


def _same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def _conv1d(config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable:
    kernel, bias = weights[0], (weights[1] if config.get("use_bias", True) else None)
    size, stride = int(config["kernel_size"][0]), int(config["strides"][0])
    if int(config.get("dilation_rate", [1])[0]) != 1 or int(config.get("groups", 1)) != 1:
        raise ForwardModelError("Conv1D with dilation or groups is not supported")
    if config.get("data_format", "channels_last") != "channels_last":
        raise ForwardModelError("Conv1D must be channels_last")
    padding = config["padding"]
    if padding not in ("same", "valid"):
        raise ForwardModelError(f"Conv1D padding {padding!r} is not supported")
    activation = _activation(config.get("activation"), in_place=True)
    flat_kernel = kernel.reshape(size * kernel.shape[1], kernel.shape[2])
    filters = kernel.shape[2]

    def windows_product(x: np.ndarray, out: np.ndarray, left: int) -> None:
        # Windows that do not overlap (stride >= size).  The windows inside x are a
        # strided view of it (a window's size * channels values are contiguous), so
        # they need no copy; only the edge windows, which reach into the padding, do.
        batch, length, channels = x.shape
        first = -(-left // stride)
        last = (length + left - size) // stride
        if last >= first:
            start = first * stride - left
            inside = as_strided(
                x[:, start:],
                shape=(batch, last - first + 1, size * channels),
                strides=(x.strides[0], stride * x.strides[1], x.strides[2]),
                writeable=False,
            )
            out[:, first : last + 1] = inside @ flat_kernel
        for index in [*range(min(first, out.shape[1])), *range(max(last + 1, 0), out.shape[1])]:
            window = np.zeros((batch, size, channels), dtype=x.dtype)
            low = index * stride - left
            valid = slice(max(low, 0), min(low + size, length))
            window[:, valid.start - low : valid.stop - low] = x[:, valid]
            out[:, index] = window.reshape(batch, -1) @ flat_kernel

    def taps_product(x: np.ndarray, out: np.ndarray, left: int) -> None:
        # Overlapping windows: one matmul per kernel tap, over the outputs whose
        # input for that tap lies inside x (the padding contributes zeros).
        length = x.shape[1]
        for tap in range(size):
            first = max(-(-(left - tap) // stride), 0)
            last = min((length - 1 + left - tap) // stride, out.shape[1] - 1)
            if last < first:
                continue
            low = first * stride - left + tap
            high = last * stride - left + tap
            out[:, first : last + 1] += x[:, low : high + 1 : stride] @ kernel[tap]

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        length = x.shape[1]
        if padding == "same":
            left = _same_padding(length, size, stride)[0]
            out_length = -(-length // stride)
        else:
            left, out_length = 0, (length - size) // stride + 1
        out = np.zeros((x.shape[0], out_length, filters), dtype=np.float32)
        if stride >= size:
            windows_product(x, out, left)
        else:
            taps_product(x, out, left)
        if bias is not None:
            out += bias
        return activation(out)

    return apply


def _max_pool1d(config: Mapping[str, Any]) -> Callable:
    size = int(config["pool_size"][0])
    stride = int((config.get("strides") or config["pool_size"])[0])
    if config.get("padding", "valid") != "valid":
        raise ForwardModelError("MaxPooling1D supports padding='valid' only")

    def apply(x: np.ndarray) -> np.ndarray:
        length = (x.shape[1] - size) // stride + 1
        end = stride * (length - 1) + 1
        out = x[:, 0:end:stride].copy()
        for tap in range(1, size):
            np.maximum(out, x[:, tap : tap + end : stride], out=out)
        return out

    return apply


def _dense(config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable:
    kernel = weights[0]
    bias = weights[1] if config.get("use_bias", True) else None
    activation = _activation(config.get("activation"), in_place=True)

    def apply(x: np.ndarray) -> np.ndarray:
        out = x @ kernel
        if bias is not None:
            out += bias
        return activation(out)

    return apply


def _build_layer(class_name: str, config: Mapping[str, Any], weights: list[np.ndarray]) -> Callable:
    if class_name == "Dense":
        return _dense(config, weights)
    if class_name == "Conv1D":
        return _conv1d(config, weights)
    if class_name == "MaxPooling1D":
        return _max_pool1d(config)
    if class_name == "Flatten":
        return lambda x: x.reshape(x.shape[0], -1)
    if class_name == "LeakyReLU":
        return _leaky_relu(float(config.get("negative_slope", config.get("alpha", 0.3))))
    if class_name == "ReLU":
        return lambda x: np.maximum(x, 0.0)
    if class_name == "Activation":
        return _activation(config["activation"])
    raise ForwardModelError(f"unsupported layer class {class_name!r}")


def _tensor_refs(args: Any) -> list[tuple[str, int, int]]:
    """Every (layer, node, tensor) a node's arguments point at, in order."""
    if isinstance(args, dict) and args.get("class_name") == "__keras_tensor__":
        return [tuple(args["config"]["keras_history"])]
    if isinstance(args, list | tuple):
        return [ref for item in args for ref in _tensor_refs(item)]
    return []


def _layer_refs(spec: Any) -> list[str]:
    if spec and isinstance(spec[0], str):
        return [spec[0]]
    return [item[0] for item in spec]


@dataclass(frozen=True)
class _Step:
    name: str
    operation: Callable
    inputs: tuple[str, ...]
    merge: str | None


class NumpyModel:
    """A functional Keras model evaluated with NumPy (float32)."""

    def __init__(self, config: Mapping[str, Any], weights: h5py.Group) -> None:
        if config.get("class_name") != "Functional":
            raise ForwardModelError(
                f"only functional models are supported (got {config.get('class_name')!r})"
            )
        body = config["config"]
        self.name: str = body.get("name", "model")
        self.input_names: tuple[str, ...] = tuple(_layer_refs(body["input_layers"]))
        self.output_names: tuple[str, ...] = tuple(_layer_refs(body["output_layers"]))
        self.input_shapes: dict[str, tuple[int | None, ...]] = {}
        self.output_width: int | None = None
        steps: list[_Step] = []
        seen: dict[str, int] = {}
        for layer in body["layers"]:
            class_name, layer_config = layer["class_name"], layer["config"]
            group_name = _snake_case(class_name)
            count = seen.get(group_name, 0)
            seen[group_name] = count + 1
            group_name = group_name if count == 0 else f"{group_name}_{count}"
            if class_name == "InputLayer":
                self.input_shapes[layer["name"]] = tuple(layer_config["batch_shape"])
                continue
            variables = weights.get(f"layers/{group_name}/vars")
            if variables is None:
                raise ForwardModelError(f"no weights for layer {layer['name']} ({group_name})")
            arrays = [
                np.asarray(variables[str(index)], dtype=np.float32)
                for index in range(len(variables))
            ]
            if len(layer["inbound_nodes"]) != 1:
                raise ForwardModelError(f"layer {layer['name']} is shared; not supported")
            refs = _tensor_refs(layer["inbound_nodes"][0]["args"])
            merge = None
            if class_name == "Concatenate":
                if int(layer_config.get("axis", -1)) != -1:
                    raise ForwardModelError("Concatenate must join the last axis")
                merge, operation = "concatenate", None
            elif class_name == "Add":
                merge, operation = "add", None
            else:
                operation = _build_layer(class_name, layer_config, arrays)
            if layer["name"] == self.output_names[0] and class_name == "Dense":
                self.output_width = int(layer_config["units"])
            steps.append(_Step(layer["name"], operation, tuple(ref[0] for ref in refs), merge))
        self._steps = tuple(steps)
        missing = [name for name in self.input_names if name not in self.input_shapes]
        if missing:
            raise ForwardModelError(f"model inputs {missing} have no InputLayer")
        depends: dict[str, frozenset[str]] = {name: frozenset([name]) for name in self.input_names}
        for step in self._steps:
            depends[step.name] = frozenset().union(*(depends[name] for name in step.inputs))
        self._depends = depends

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray | list[np.ndarray]:
        """Evaluate on a batch: ``inputs`` maps input-layer names to arrays."""
        return self._evaluate(inputs, {}, frozenset())

    def evaluate_many(
        self, batches: Sequence[Mapping[str, np.ndarray]], shared: Sequence[str] = ()
    ) -> list[np.ndarray | list[np.ndarray]]:
        """Evaluate several batches whose inputs named in ``shared`` are the same.

        The layers that depend on the shared inputs alone (the k-bases branch,
        say) run once, for the first batch; the results equal calling the model
        on each batch.
        """
        shared_names = frozenset(shared)
        unknown = sorted(shared_names - set(self.input_names))
        if unknown:
            raise KeyError(f"shared inputs {unknown} are not inputs of {self.name}")
        cache: dict[str, np.ndarray] = {}
        return [self._evaluate(batch, cache, shared_names) for batch in batches]

    def _evaluate(
        self,
        inputs: Mapping[str, np.ndarray],
        cache: dict[str, np.ndarray],
        shared: frozenset[str],
    ) -> np.ndarray | list[np.ndarray]:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise KeyError(f"missing model inputs {missing}")
        values = {name: np.asarray(inputs[name], dtype=np.float32) for name in self.input_names}
        for step in self._steps:
            reusable = bool(shared) and self._depends[step.name] <= shared
            if reusable and step.name in cache:
                values[step.name] = cache[step.name]
                continue
            args = [values[name] for name in step.inputs]
            if step.merge == "concatenate":
                values[step.name] = np.concatenate(args, axis=-1)
            elif step.merge == "add":
                values[step.name] = np.sum(args, axis=0)
            else:
                values[step.name] = step.operation(args[0])
            if reusable:
                cache[step.name] = values[step.name]
        outputs = [values[name] for name in self.output_names]
        return outputs[0] if len(outputs) == 1 else outputs


def load_numpy_model(path: str | Path) -> NumpyModel:
    """Read a ``.keras`` archive into a :class:`NumpyModel`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weight_bytes = archive.read("model.weights.h5")
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ForwardModelError(f"{path} is not a readable .keras archive: {error}") from error
    try:
        with h5py.File(io.BytesIO(weight_bytes), "r") as weights:
            return NumpyModel(config, weights)
    except (OSError, KeyError, TypeError) as error:
        raise ForwardModelError(f"{path}: cannot read its architecture/weights: {error}") from error
