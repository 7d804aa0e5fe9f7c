"""Benchmark (a): the attention core, ours vs keras.ops.dot_product_attention (with and without
XLA) vs torch's CPU scaled_dot_product_attention, B=1, 8 heads, d=64, float32; and our
MultiHeadAttention vs keras's (model width 512, the same attention plus the projections).

Every TensorFlow peer runs in a tf.function, as inside a model; `ours_xla` is ours inside a
`jit_compile=True` function (what `fit(jit_compile=True)` does), `ours` without one (Keras's
default on CPU).

Run: python benchmarks/attention_core.py [--lengths 128 512 1024 2048 4096 8192]
     [--masks none padding causal] [--modes forward backward] [--repeats 5]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from common import interleaved_medians, matmul_ceiling, write  # first: it sets up torch's threads

import keras_seqattn as ksa

HEADS, DEPTH = 8, 64


def tf_peers(q, k, v, mask_kind, backward):
    length = q.shape[1]
    padding = tf.constant(np.arange(length)[None, :] < int(length * 0.9))  # (1, S): 10% padded
    causal = mask_kind == "causal"
    ours_mask = padding if mask_kind == "padding" else None
    keras_mask = padding[:, None, None, :] if mask_kind == "padding" else None

    def ours(q, k, v):  # training, as in fit, when the gradient is taken: the policy's budget applies
        return ksa.ops.scaled_dot_product_attention(q, k, v, mask=ours_mask, is_causal=causal, training=backward)

    def theirs(q, k, v):
        return keras.ops.dot_product_attention(q, k, v, mask=keras_mask, is_causal=causal)

    peers = {
        "ours": tf.function(ours, jit_compile=False),
        "ours_xla": tf.function(ours, jit_compile=True),
        "keras": tf.function(theirs, jit_compile=False),
        "keras_xla": tf.function(theirs, jit_compile=True),
    }
    if backward:
        peers = {name: _with_gradient(f) for name, f in peers.items()}
    return {name: (lambda f=f: f(q, k, v)) for name, f in peers.items()}


def layer_peers(q, mask_kind, backward):
    """Our MultiHeadAttention and keras's on `(1, L, 512)` inputs, self-attention."""
    x = tf.reshape(q, (1, q.shape[1], HEADS * DEPTH))
    length = x.shape[1]
    value_mask = tf.constant(np.arange(length)[None, :] < int(length * 0.9)) if mask_kind == "padding" else None
    peers = {}
    for name, cls in (("ours_mha", ksa.MultiHeadAttention), ("keras_mha", keras.layers.MultiHeadAttention)):
        layer = cls(num_heads=HEADS, key_dim=DEPTH)
        layer(x, x)  # build

        def attend(x, _layer=layer):
            return _layer(x, x, value_mask=value_mask, use_causal_mask=mask_kind == "causal", training=backward)

        run = _with_gradient(attend) if backward else tf.function(attend)
        peers[name] = lambda run=run: run(x)
    return peers


def _with_gradient(attend):
    @tf.function
    def forward_backward(*inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            output = attend(*inputs)
        return tape.gradient(output, inputs, output_gradients=tf.ones_like(output))

    return forward_backward


def torch_peer(q, k, v, mask_kind, backward):
    try:
        import torch
    except ImportError:
        return {}
    q, k, v = (torch.tensor(x.numpy()).transpose(1, 2).contiguous() for x in (q, k, v))  # (B, H, L, d)
    length = q.shape[2]
    mask = (torch.arange(length) < int(length * 0.9))[None, None, None] if mask_kind == "padding" else None

    def run():
        if not backward:
            with torch.no_grad():
                return torch.nn.functional.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, is_causal=mask_kind == "causal"
                )
        inputs = [x.detach().requires_grad_() for x in (q, k, v)]
        out = torch.nn.functional.scaled_dot_product_attention(*inputs, attn_mask=mask, is_causal=mask_kind == "causal")
        out.backward(torch.ones_like(out))
        return [x.grad for x in inputs]

    return {"torch": run}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--masks", nargs="+", default=["none", "padding", "causal"])
    parser.add_argument("--modes", nargs="+", default=["forward", "backward"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="attention_core")
    args = parser.parse_args()
    ceiling = matmul_ceiling()
    rows = []
    rng = np.random.default_rng(0)
    for length in args.lengths:
        q, k, v = (tf.constant(rng.normal(size=(1, length, HEADS, DEPTH)), "float32") for _ in range(3))
        for mode in args.modes:
            for mask_kind in args.masks:
                backward = mode == "backward"
                peers = {
                    **tf_peers(q, k, v, mask_kind, backward),
                    **torch_peer(q, k, v, mask_kind, backward),
                    **layer_peers(q, mask_kind, backward),
                }
                seconds = interleaved_medians(peers, repeats=args.repeats, min_seconds=2.0)
                flops = 4 * HEADS * length**2 * DEPTH * (3.5 if backward else 1.0)  # nominal, unmasked
                best_keras = min(seconds["keras"], seconds["keras_xla"])
                row = {
                    "L": length,
                    "mode": "forward+backward" if backward else "forward",
                    "mask": mask_kind,
                    **{f"{name} ms": s * 1e3 for name, s in seconds.items()},
                    "ours GFLOP/s": flops / seconds["ours"] / 1e9,
                    "ours / ceiling": flops / seconds["ours"] / 1e9 / ceiling,
                    "speed-up vs keras (best)": best_keras / seconds["ours"],
                }
                if "torch" in seconds:
                    row["speed-up vs torch"] = seconds["torch"] / seconds["ours"]
                row["MHA speed-up vs keras"] = seconds["keras_mha"] / seconds["ours_mha"]
                rows.append(row)
                print(row, flush=True)
    columns = [
        "L",
        "mode",
        "mask",
        "ours ms",
        "ours_xla ms",
        "keras ms",
        "keras_xla ms",
        "torch ms",
        "ours GFLOP/s",
        "ours / ceiling",
        "speed-up vs keras (best)",
        "speed-up vs torch",
        "ours_mha ms",
        "keras_mha ms",
        "MHA speed-up vs keras",
    ]
    causal = []
    for row in rows:
        if row["mask"] == "causal":
            plain = next(r for r in rows if r["L"] == row["L"] and r["mode"] == row["mode"] and r["mask"] == "none")
            causal.append(f"{row['mode']} L={row['L']}: {plain['ours ms'] / row['ours ms']:.2f}x")
    write(
        args.name,
        rows,
        columns,
        "Attention core: B=1, 8 heads, d=64, float32",
        notes=f"Causal speed-up over no mask, ours: {'; '.join(causal)}. "
        f"Policy: {ksa.ops.get_policy()}. Forward+backward runs with training=True (as in fit), so "
        "the policy keeps the dense path while its score matrices fit `training_budget`. "
        f"Matmul ceiling (2048³ float32, XLA, its best run) in the same run: {ceiling:.0f} GFLOP/s. "
        f"Medians of interleaved runs after warm-up: at least {args.repeats} rounds, more for "
        "fast cells (about 2 s of runs, up to 200 rounds). GFLOP/s counts the unmasked 4·H·L²·d "
        "(×3.5 for forward+backward), so causal runs show an effective rate. Speed-ups > 1 "
        "mean ours is faster. `ours` runs in a tf.function (Keras's default on CPU), "
        "`ours_xla` in a jit_compile=True one; the MHA columns time whole layers (width "
        "512, self-attention, padding as `value_mask`).",
    )


if __name__ == "__main__":
    main()
