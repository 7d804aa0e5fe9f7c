"""(j) TensorFlow's oneDNN setting: the same workloads with `TF_ENABLE_ONEDNN_OPTS=0` and `=1`, each
setting in its own fresh processes (TensorFlow reads it once, at start), interleaved off, on, off,
on: the attention core (ours and keras's dense `dot_product_attention`, forward and
forward+backward, causal and not), a 2048³ float32 matmul, and one training step of an RNN
attention model (an LSTM `AttentionDecoder` with Luong attention, batch 64, 30 steps, 256 units)
with and without `jit_compile`.

    python benchmarks/onednn.py [--lengths 1024 4096] [--rounds 2]
"""

import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine, write

CHILD = r"""
import json, os, sys, time, statistics
import numpy as np
import keras
import tensorflow as tf
import keras_seqattn as ksa

lengths = [int(x) for x in sys.argv[1].split(",")]
rows = {"onednn": ksa.ops.onednn_enabled()}

def median_ms(fn, repeats=5):
    fn()  # trace, compile, warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda x: getattr(x, "numpy", lambda: x)(), fn())
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)

a = tf.random.normal([2048, 2048])
matmul = tf.function(lambda: a @ a)
rows["matmul_gflops"] = 2 * 2048**3 / median_ms(matmul) / 1e6
for length in lengths:
    q, k, v = (tf.random.normal((1, length, 8, 64), seed=i) for i in range(3))
    for causal in (False, True):
        attend = {
            "ours": lambda: ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=causal),
            "keras": lambda: keras.ops.dot_product_attention(q, k, v, is_causal=causal),
        }
        for name, fn in attend.items():
            forward = tf.function(fn)

            @tf.function
            def both(fn=fn):
                with tf.GradientTape() as tape:
                    tape.watch([q, k, v])
                    out = fn()
                return tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))

            key = f"{name} {'causal' if causal else 'none'} L={length}"
            rows[key + " forward"] = median_ms(forward)
            rows[key + " forward+backward"] = median_ms(both)

source, target, units, vocabulary = 30, 30, 256, 64
def rnn_model(jit_compile):
    keras.utils.set_random_seed(0)
    src = keras.Input((source,), dtype="int32")
    tgt = keras.Input((target,), dtype="int32")
    encoded = keras.layers.LSTM(units, return_sequences=True)(keras.layers.Embedding(vocabulary, 64)(src))
    decoder = ksa.seq2seq.AttentionDecoder(keras.layers.LSTMCell(units), ksa.LuongAttention("general"),
                                           vocabulary_size=vocabulary, embedding_dim=64)
    model = keras.Model([src, tgt], decoder(tgt, encoded))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    return model
x = [np.random.randint(1, vocabulary, (64, source)), np.random.randint(1, vocabulary, (64, target))]
y = np.random.randint(1, vocabulary, (64, target))
for jit_compile in (False, True):
    model = rnn_model(jit_compile)
    model.train_on_batch(x, y)
    rows[f"rnn step jit_compile={jit_compile}"] = median_ms(lambda: model.train_on_batch(x, y, return_dict=True))
print(json.dumps(rows))
"""


def run(setting, lengths):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(map(str, lengths))], capture_output=True, text=True, env=env
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per setting, interleaved")
    args = parser.parse_args()
    runs = {"0": [], "1": []}
    for _ in range(args.rounds):
        for setting in ("0", "1"):
            runs[setting].append(run(setting, args.lengths))
    assert [r["onednn"] for r in runs["0"]] == [False] * args.rounds, "oneDNN did not turn off"
    assert [r["onednn"] for r in runs["1"]] == [True] * args.rounds, "oneDNN did not turn on"
    keys = [key for key in runs["0"][0] if key != "onednn"]
    rows = []
    for key in keys:
        off = statistics.median(r[key] for r in runs["0"])
        on = statistics.median(r[key] for r in runs["1"])
        ratio = on / off if key == "matmul_gflops" else off / on  # > 1: faster with oneDNN on
        rows.append({"workload": key, "oneDNN off": off, "oneDNN on": on, "on over off": ratio})
    default = "on" if machine()["onednn"] else "off"
    write(
        "onednn",
        rows,
        ["workload", "oneDNN off", "oneDNN on", "on over off"],
        "TensorFlow's oneDNN setting: the same workloads off and on",
        notes=f"Milliseconds (matmul: GFLOP/s), medians over {args.rounds} fresh processes per setting, "
        f"interleaved; B = 1, 8 heads, d = 64, float32. TensorFlow's default on this CPU: {default}. "
        "'on over off' > 1 means faster with oneDNN on.",
    )


if __name__ == "__main__":
    main()
