"""`python -m keras_seqattn.tune [--repeats 3] [--path FILE]`: tune the attention policy on this
machine and write it where `get_policy()` finds it (`keras_seqattn.ops.tuning`), then measure
the two settings that are the user's to make: TensorFlow's oneDNN optimisations (off against on,
in fresh processes) and `jit_compile` for an RNN attention model (an LSTM `AttentionDecoder` with
Luong attention, batch 64, 30 steps, 256 units: one training step with and without XLA), and
say which to use on this CPU. TensorFlow."""

import argparse
import os
import statistics
import time

from keras_seqattn.ops.tuning import onednn_enabled, save_policy, time_onednn, tune


def time_rnn_compile(repeats=3, batch=64, steps=30, units=256, vocabulary=64):
    """Seconds of one training step of an RNN attention model, `{jit_compile: median}`."""
    import keras
    import numpy as np

    from keras_seqattn import LuongAttention
    from keras_seqattn.seq2seq import AttentionDecoder

    rng = np.random.default_rng(0)
    x = [rng.integers(1, vocabulary, (batch, steps)), rng.integers(1, vocabulary, (batch, steps))]
    y = rng.integers(1, vocabulary, (batch, steps))
    seconds = {}
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)
        source, target = keras.Input((steps,), dtype="int32"), keras.Input((steps,), dtype="int32")
        encoded = keras.layers.LSTM(units, return_sequences=True)(keras.layers.Embedding(vocabulary, 64)(source))
        decoder = AttentionDecoder(
            keras.layers.LSTMCell(units), LuongAttention("general"), vocabulary_size=vocabulary, embedding_dim=64
        )
        model = keras.Model([source, target], decoder(target, encoded))
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
        model.train_on_batch(x, y)  # trace and compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        seconds[jit_compile] = statistics.median(times)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description="Tune the attention policy on this machine.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--path", default=None, help="where to write the policy (default: ~/.keras_seqattn/policy.json)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    policy = tune(args.repeats)
    path = save_policy(policy, args.path)
    print(f"tuned in {time.perf_counter() - start:.0f} s: {policy}")
    print(f"written to {path}")
    seconds = time_onednn(repeats=args.repeats)
    state = "on" if onednn_enabled() else "off"
    chosen = "" if "TF_ENABLE_ONEDNN_OPTS" in os.environ else " (TensorFlow's default for this CPU)"
    print(
        f"oneDNN (attention forward+backward, causal and not, L = 2048): off {seconds[False] * 1000:.0f} ms, "
        f"on {seconds[True] * 1000:.0f} ms ({seconds[False] / seconds[True]:.2f}x with it on); "
        f"this process runs with it {state}{chosen}"
    )
    seconds = time_rnn_compile(args.repeats)
    advice = "jit_compile=True" if seconds[True] < seconds[False] else "jit_compile=False (Keras's CPU default)"
    print(
        f"RNN attention model (oneDNN {state}): a training step takes {seconds[True] * 1000:.0f} ms with XLA and "
        f"{seconds[False] * 1000:.0f} ms without: compile RNN attention models with {advice} on this CPU"
    )


if __name__ == "__main__":
    main()
