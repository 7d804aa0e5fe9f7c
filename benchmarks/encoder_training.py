"""Benchmark (c): training a 2-block Transformer encoder with `model.fit`, ours
(`keras_seqattn.TransformerEncoder`) vs `keras_hub.layers.TransformerEncoder`: tokens/s, timed in
one process with the peers' epochs interleaved, and peak RSS, a fresh subprocess per configuration.
d 256, 4 heads, FFN 1024, batch 8, float32, token ids in and a vocabulary projection out.

Run: python benchmarks/encoder_training.py [--lengths 512 2048] [--steps 4] [--repeats 5]
     [--jit-compile]
"""

import argparse
import json
import statistics

import keras
import keras_hub
import numpy as np
import tensorflow as tf

# common first: it sets up torch's threads
from common import interleaved_times, matmul_ceiling, peak_rss, reset_peak_rss, run_child, write

import keras_seqattn as ksa

VOCAB, DIM, HEADS, FFN, BATCH, BLOCKS = 1000, 256, 4, 1024, 8, 2


def build(peer, length, jit_compile):
    encoder = {"ours": ksa.TransformerEncoder, "keras_hub": keras_hub.layers.TransformerEncoder}[peer]
    keras.utils.set_random_seed(0)
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, DIM)(tokens)  # (batch, L, DIM)
    for _ in range(BLOCKS):
        x = encoder(intermediate_dim=FFN, num_heads=HEADS)(x)
    model = keras.Model(tokens, keras.layers.Dense(VOCAB)(x))  # (batch, L, VOCAB)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    return model


def batches(length, steps):
    """A cached in-memory dataset, tf.data's autotuning off. With it on, about half the epochs of
    both peers ended exactly 10 ms x (2^n - 1) after they began (2.55 s, 20.47 s): the end of an
    epoch waited for the autotuner, which sleeps 10 ms, then 20, 40... between rounds."""
    ids = np.random.default_rng(0).integers(1, VOCAB, size=(steps * BATCH, length + 1))
    options = tf.data.Options()
    options.autotune.enabled = False
    data = tf.data.Dataset.from_tensor_slices((ids[:, :-1], ids[:, 1:])).batch(BATCH).cache()
    return data.with_options(options)


def epoch_runner(peer, length, steps, jit_compile):
    """A callable that trains one epoch of `steps` batches (traced at the first call)."""
    model, data = build(peer, length, jit_compile), batches(length, steps)

    def run():
        history = model.fit(data, epochs=1, verbose=0)
        return tf.constant(history.history["loss"][-1])

    return run


def child(peer, length, steps, jit_compile):
    """In a fresh process (imports done): the peak RSS of building and training one epoch."""
    baseline = reset_peak_rss()
    epoch_runner(peer, length, steps, jit_compile)()
    print(json.dumps({"baseline MB": baseline, "peak MB": peak_rss()}))


def measure_rss(peer, length, steps, jit_compile):
    command = [__file__, "--child", peer, "--lengths", str(length), "--steps", str(steps)]
    return run_child(command + (["--jit-compile"] if jit_compile else []))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--steps", type=int, default=4, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true", help="fit with jit_compile=True")
    parser.add_argument("--child", choices=["ours", "keras_hub"], help=argparse.SUPPRESS)
    parser.add_argument("--name", default="encoder_training")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.lengths[0], args.steps, args.jit_compile)
    ceiling = matmul_ceiling()
    rows = []
    for length in args.lengths:
        peers = {peer: epoch_runner(peer, length, args.steps, args.jit_compile) for peer in ("ours", "keras_hub")}
        times = interleaved_times(peers, repeats=args.repeats, warmup=1)
        seconds = {peer: statistics.median(t) for peer, t in times.items()}
        memory = {peer: measure_rss(peer, length, args.steps, args.jit_compile) for peer in peers}
        tokens = args.steps * BATCH * length
        row = {
            "L": length,
            **{f"{peer} tokens/s": tokens / s for peer, s in seconds.items()},
            **{f"{peer} peak MB": memory[peer].get("peak MB", memory[peer].get("error")) for peer in peers},
            **{
                f"{peer} above imports MB": memory[peer]["peak MB"] - memory[peer]["baseline MB"]
                for peer in peers
                if "peak MB" in memory[peer]
            },
            "speed-up vs keras_hub": seconds["keras_hub"] / seconds["ours"],
        }
        row.update({f"{peer} epoch seconds": [round(t, 2) for t in times[peer]] for peer in peers})
        if all("peak MB" in m for m in memory.values()):
            row["RSS saved vs keras_hub"] = 1 - memory["ours"]["peak MB"] / memory["keras_hub"]["peak MB"]
        rows.append(row)
        print(row, flush=True)
    columns = [
        "L",
        "ours tokens/s",
        "keras_hub tokens/s",
        "speed-up vs keras_hub",
        "ours peak MB",
        "keras_hub peak MB",
        "RSS saved vs keras_hub",
        "ours above imports MB",
        "keras_hub above imports MB",
        "ours epoch seconds",
        "keras_hub epoch seconds",
    ]
    write(
        args.name,
        rows,
        columns,
        f"Encoder training: {BLOCKS} blocks, d {DIM}, {HEADS} heads, FFN {FFN}, batch {BATCH}, float32",
        notes=f"`model.fit` with jit_compile={args.jit_compile} (Keras's default on CPU is False), "
        f"Adam, {args.steps} batches per epoch; tokens/s from the median of {args.repeats} "
        "interleaved epochs after a warm-up epoch; peak RSS of a fresh process that builds the "
        "model and trains one epoch, and how much of it came after the imports (the peak is "
        "reset once they are done, through /proc/self/clear_refs). Matmul ceiling (2048³ "
        f"float32, XLA, its best run) in the same run: {ceiling:.0f} GFLOP/s.",
    )


if __name__ == "__main__":
    main()
