"""(f) Half precision: our attention in bfloat16 (what `mixed_bfloat16` gives it) against our
float32, forward and forward+backward, without a mask and causal, B=1, 8 heads, d=64; keras's
`dot_product_attention` in both dtypes as the peer. Also the accuracy of the bfloat16 outputs
against a float64 NumPy reference, and that a fully masked row stays zero and finite.

Run: python benchmarks/half_precision.py [--lengths 2048 4096] [--repeats 5]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from common import interleaved_medians, write

import keras_seqattn as ksa

HEADS, DEPTH = 8, 64


def peers(q32, k32, v32, causal, backward):
    functions = {}
    for dtype in ("float32", "bfloat16"):
        q, k, v = (tf.cast(x, dtype) for x in (q32, k32, v32))
        for name, attend in (
            (
                "ours",
                lambda q, k, v: ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=causal, training=backward),
            ),
            ("keras", lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=causal)),
        ):
            functions[f"{name} {dtype}"] = _runner(attend, (q, k, v), backward)
    return functions


def _runner(attend, inputs, backward):
    if not backward:
        function = tf.function(attend)
        return lambda: function(*inputs)

    @tf.function
    def both(*inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = attend(*inputs)
        return tape.gradient(out, inputs, output_gradients=tf.ones_like(out))

    return lambda: both(*inputs)


def accuracy(length):
    """Max |bfloat16 - float64 reference| of the forward output, causal, with a fully masked row."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(1, length, HEADS, DEPTH)) for _ in range(3))
    mask = np.ones((1, length), bool)
    query_mask = np.ones((1, 1, length, 1), bool)
    query_mask[0, 0, 7] = False  # query 7 attends nothing
    out = ksa.ops.scaled_dot_product_attention(
        *(tf.constant(x, "bfloat16") for x in (q, k, v)),
        is_causal=True,
        mask=query_mask & mask[:, None, None, :],
        flash_attention=True,
    )
    out = tf.cast(out, tf.float64).numpy()
    scores = np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(DEPTH)
    scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    reference = np.einsum("bhts,bshd->bthd", weights / weights.sum(-1, keepdims=True), v)
    reference[0, 7] = 0.0
    return float(np.abs(out - reference).max()), bool(np.all(np.isfinite(out)) and np.all(out[0, 7] == 0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    rng = np.random.default_rng(0)
    for length in args.lengths:
        q, k, v = (tf.constant(rng.normal(size=(1, length, HEADS, DEPTH)), "float32") for _ in range(3))
        for backward in (False, True):
            for causal in (False, True):
                seconds = interleaved_medians(peers(q, k, v, causal, backward), repeats=args.repeats, min_seconds=2.0)
                row = {
                    "L": length,
                    "mode": "forward+backward" if backward else "forward",
                    "mask": "causal" if causal else "none",
                    **{f"{n} ms": s * 1e3 for n, s in seconds.items()},
                    "ours bf16 speed-up over f32": seconds["ours float32"] / seconds["ours bfloat16"],
                    "keras bf16 speed-up over f32": seconds["keras float32"] / seconds["keras bfloat16"],
                }
                rows.append(row)
                print(row, flush=True)
    error, clean = accuracy(1024)
    columns = [
        "L",
        "mode",
        "mask",
        "ours float32 ms",
        "ours bfloat16 ms",
        "ours bf16 speed-up over f32",
        "keras float32 ms",
        "keras bfloat16 ms",
        "keras bf16 speed-up over f32",
    ]
    write(
        "half_precision",
        rows,
        columns,
        "Half precision: bfloat16 against float32, B=1, 8 heads, d=64",
        notes=f"Policy: {ksa.ops.get_policy()}. The flash path's products run in bfloat16, its scores, "
        "softmax statistics and accumulators in float32. Accuracy, causal at L = 1024 with a fully "
        f"masked query: max |bfloat16 - float64 reference| = {error:.4f}; masked row zero and all "
        f"outputs finite: {clean}. Medians of interleaved runs (at least {args.repeats} rounds).",
    )


if __name__ == "__main__":
    main()
