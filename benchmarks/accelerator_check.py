"""(k) The kernels on whatever device TensorFlow sees (a GPU or TPU where one is attached, else the
CPU): outputs and gradients of the flash path against the dense path (masks, causal, windows,
float32, bfloat16, float16), then forward and forward+backward times against
`keras.ops.dot_product_attention` with and without XLA. Writes `results/accelerator_<device>.md`.

    python benchmarks/accelerator_check.py [--lengths 1024 4096] [--repeats 5]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from common import interleaved_medians, write

import keras_seqattn as ksa

HEADS, DEPTH = 8, 64


def device_kind():
    for kind in ("TPU", "GPU"):
        if tf.config.list_logical_devices(kind):
            return kind.lower()
    return "cpu"


def inputs(length, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(size=(2, length, HEADS, DEPTH)), dtype) for _ in range(3)]


def outputs_and_gradients(q, k, v, flash, **kwargs):
    with tf.GradientTape() as tape:
        tape.watch([q, k, v])
        out = ksa.ops.scaled_dot_product_attention(q, k, v, flash_attention=flash, **kwargs)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * tf.sin(tf.cast(out, tf.float32)))
    return [out, *tape.gradient(loss, [q, k, v])]


def _relative_error(got, want):
    """The largest absolute difference over the output and the gradients, over the largest value."""
    error = max(
        float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))) for a, b in zip(got, want)
    )
    return error / max(float(tf.reduce_max(tf.abs(tf.cast(b, tf.float32)))) for b in want)


def check(length=512):
    """Each path's error against the float32 dense path, per dtype and case: the flash path must be
    within twice the dense path's own error in that dtype (or 2e-4 in float32)."""
    rows = []
    padding = np.arange(length)[None, :] < np.array([[length], [length * 3 // 4]])  # (2, S)
    cases = {
        "none": {},
        "padding": {"mask": padding},
        "causal": {"is_causal": True},
        "causal + padding": {"is_causal": True, "mask": padding},
        "window 64": {"window": 64},
        "causal window 64": {"is_causal": True, "window": 64},
    }
    for name, kwargs in cases.items():
        reference = outputs_and_gradients(*inputs(length, "float32"), False, **kwargs)
        for dtype in ("float32", "bfloat16", "float16"):
            q, k, v = inputs(length, dtype)
            flash = _relative_error(outputs_and_gradients(q, k, v, True, **kwargs), reference)
            dense = _relative_error(outputs_and_gradients(q, k, v, False, **kwargs), reference)
            rows.append(
                {
                    "case": f"{dtype}, {name}, L={length}",
                    "flash error": f"{flash:.1e}",
                    "dense error": f"{dense:.1e}",
                    "within": flash <= max(2 * dense, 2e-4),
                }
            )
    return rows


def timings(lengths, repeats):
    rows = []
    for length in lengths:
        q, k, v = inputs(length, "float32")
        for causal in (False, True):

            def ours(q, k, v, causal=causal):
                return ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=causal)

            def theirs(q, k, v, causal=causal):
                return keras.ops.dot_product_attention(q, k, v, is_causal=causal)

            for backward in (False, True):
                peers = {
                    "ours": tf.function(ours),
                    "keras": tf.function(theirs),
                    "keras_xla": tf.function(theirs, jit_compile=True),
                }
                if backward:
                    peers = {name: _with_gradient(f) for name, f in peers.items()}
                seconds = interleaved_medians(
                    {name: (lambda f=f, q=q, k=k, v=v: f(q, k, v)) for name, f in peers.items()}, repeats=repeats
                )
                best = min(seconds["keras"], seconds["keras_xla"])
                rows.append(
                    {
                        "L": length,
                        "mask": "causal" if causal else "none",
                        "mode": "forward+backward" if backward else "forward",
                        "ours ms": 1000 * seconds["ours"],
                        "keras ms": 1000 * seconds["keras"],
                        "keras_xla ms": 1000 * seconds["keras_xla"],
                        "ours over best keras": best / seconds["ours"],
                    }
                )
    return rows


def _with_gradient(function):
    @tf.function
    def both(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = function(q, k, v)
        return tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))

    return both


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kind = device_kind()
    checked = check()
    timed = timings(args.lengths, args.repeats)
    rows = checked + [{"case": f"L={r['L']}, {r['mask']}, {r['mode']}", **r} for r in timed]
    policy = ksa.ops.get_policy()
    write(
        f"accelerator_{kind}",
        rows,
        ["case", "flash error", "dense error", "within", "ours ms", "keras ms", "keras_xla ms", "ours over best keras"],
        f"The kernels on the {kind.upper()}: flash against dense, and times against keras",
        notes=f"Device: {kind} ({', '.join(d.name for d in tf.config.list_logical_devices())}); the policy's "
        f"defaults for it: compile={policy.compile!r}, causal_tiles={policy.causal_tiles}, "
        f"online_tiles={policy.online_tiles}. Errors: each path's largest absolute difference from the float32 "
        "dense path over the output and the three gradients, over the largest reference value; the flash "
        "path is within when its error is at most twice the dense path's in the same dtype (2e-4 in float32). "
        f"Times: B = 2 and float32, medians of {args.repeats} after warm-up, peers interleaved.",
    )


if __name__ == "__main__":
    main()
