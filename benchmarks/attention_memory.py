"""Benchmark (b): peak memory (RSS) of attention forward+backward, ours vs keras, each
configuration in a fresh subprocess. B=1, 8 heads, d=64, float32, no mask.

Run: python benchmarks/attention_memory.py [--lengths 4096 8192 16384] [--keras-max 8192]
"""

import argparse

from common import run_child, write

_CHILD = """
import json, resource, sys
import numpy as np, tensorflow as tf, keras
import keras_seqattn as ksa
peer, length = sys.argv[1], int(sys.argv[2])
q, k, v = (tf.constant(np.random.default_rng(0).normal(size=(1, length, 8, 64)), "float32") for _ in range(3))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
attend = {"ours": lambda q, k, v: ksa.ops.scaled_dot_product_attention(q, k, v),
          "keras": tf.function(lambda q, k, v: keras.ops.dot_product_attention(q, k, v))}[peer]
with tf.GradientTape() as tape:
    tape.watch([q, k, v])
    out = attend(q, k, v)
grads = tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))
[g.numpy() for g in grads]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline MB": before / 1024, "peak MB": peak / 1024}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument(
        "--keras-max", type=int, default=8192, help="longest length keras is run at (its scores alone need 32·L² bytes)"
    )
    args = parser.parse_args()
    rows = []
    for length in args.lengths:
        row = {"L": length}
        for peer in ("ours", "keras"):
            if peer == "keras" and length > args.keras_max:
                row["keras peak MB"] = f"not run (> --keras-max {args.keras_max})"
                continue
            measured = run_child(["-c", _CHILD, peer, str(length)])
            row[f"{peer} peak MB"] = measured.get("peak MB", measured.get("error"))
            row[f"{peer} baseline MB"] = measured.get("baseline MB", "")
        if isinstance(row.get("keras peak MB"), float):
            row["keras / ours"] = row["keras peak MB"] / row["ours peak MB"]
        rows.append(row)
        print(row, flush=True)
    write(
        "attention_memory",
        rows,
        ["L", "ours peak MB", "keras peak MB", "keras / ours", "ours baseline MB", "keras baseline MB"],
        "Peak RSS of attention forward+backward: B=1, 8 heads, d=64, float32, no mask",
        notes="Each cell is a fresh process (ru_maxrss); the baseline is the RSS after importing "
        "TensorFlow and creating the inputs.",
    )


if __name__ == "__main__":
    main()
