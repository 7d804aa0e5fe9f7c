"""(g) Training an RNN attention model with and without `jit_compile`: the date translator's
architecture (examples/translate_dates.py: embedding, bidirectional GRU encoder, GRU
`AttentionDecoder` with Bahdanau attention), random token ids, `model.fit` epochs of a few batches
with the two settings interleaved; milliseconds per training step.

Run: python benchmarks/rnn_training.py [--steps 8] [--repeats 5]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from common import interleaved_times, write

import keras_seqattn as ksa
from keras_seqattn.seq2seq import AttentionDecoder

SOURCE_VOCAB, TARGET_VOCAB, SOURCE, TARGET, BATCH = 80, 15, 40, 11, 64


def build(jit_compile):
    keras.utils.set_random_seed(0)
    source, target_in = keras.Input((SOURCE,), dtype="int32"), keras.Input((TARGET,), dtype="int32")
    encoded, _, backward = keras.layers.Bidirectional(keras.layers.GRU(64, return_sequences=True, return_state=True))(
        keras.layers.Embedding(SOURCE_VOCAB, 32, mask_zero=True)(source)
    )
    decoder = AttentionDecoder(keras.layers.GRUCell(128), ksa.BahdanauAttention(64), TARGET_VOCAB, 32)
    logits = decoder(target_in, encoded, encoder_state=keras.layers.Dense(128, activation="tanh")(backward))
    model = keras.Model([source, target_in], logits)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    size = args.steps * BATCH
    data = (
        tf.data.Dataset.from_tensor_slices(
            (
                (rng.integers(1, SOURCE_VOCAB, (size, SOURCE)), rng.integers(1, TARGET_VOCAB, (size, TARGET))),
                rng.integers(1, TARGET_VOCAB, (size, TARGET)),
            )
        )
        .batch(BATCH)
        .cache()
    )
    runs = {}
    for jit_compile in (False, True):
        model = build(jit_compile)
        runs[f"jit_compile={jit_compile}"] = lambda model=model: tf.constant(
            model.fit(data, epochs=1, verbose=0).history["loss"][-1]
        )
    times = interleaved_times(runs, repeats=args.repeats, warmup=1)
    rows = [
        {
            "setting": name,
            "ms per step": 1000 * float(np.median(t)) / args.steps,
            "best ms per step": 1000 * min(t) / args.steps,
        }
        for name, t in times.items()
    ]
    write(
        "rnn_training",
        rows,
        ["setting", "ms per step", "best ms per step"],
        "Training an RNN attention model (the date translator's architecture) with and without jit_compile",
        notes=f"Batch {BATCH}, source {SOURCE} and target {TARGET} tokens, {args.steps} steps an epoch, "
        f"medians of {args.repeats} interleaved epochs after one warm-up epoch each.",
    )


if __name__ == "__main__":
    main()
