"""Tune the attention policy on this machine: `python -m keras_seqattn.tune [--repeats 3] [--path FILE]`.

It times, on this machine, forward and forward+backward attention (batch 1, 8 heads of 64, float32)
at two lengths for each candidate setting of the blocked path: the causal kind and tiles, the
whole-row budget and whether the causal tiles compile with XLA. Each setting is tried against the
defaults, the best kept when it is faster by more than the noise, and the result written where
`keras_seqattn.ops.get_policy()` finds it (~/.keras_seqattn/policy.json, or $KERAS_SEQATTN_POLICY),
with this CPU's model: on another CPU the file is ignored. TensorFlow only.
"""

import argparse
import statistics
import time

import tensorflow as tf

from keras_seqattn.ops.attention import scaled_dot_product_attention
from keras_seqattn.ops.policy import AttentionPolicy, default_policy, save_policy

LENGTHS = (2048, 4096)
CANDIDATES = {  # field -> the values tried (the default's own value included)
    "causal": [dict(causal_kind="online", causal_tiles=(256, 256)), dict(causal_kind="online", causal_tiles=(512, 256)),
               dict(causal_kind="rows", causal_rows=256), dict(causal_kind="online", causal_tiles=(256, 256),
                                                               compile="never")],
    "rows": [dict(row_scores=1 << 20), dict(row_scores=1 << 21)],
}


def _time(policy, causal, length, repeats):
    """The median seconds of forward+backward, and of forward, at `length` under `policy`."""
    q, k, v = (tf.random.normal((1, length, 8, 64), seed=i) for i in range(3))

    @tf.function
    def forward():
        return scaled_dot_product_attention(q, k, v, is_causal=causal, flash=True, policy=policy)

    @tf.function
    def both():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = scaled_dot_product_attention(q, k, v, is_causal=causal, flash=True, policy=policy)
        return tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))

    seconds = []
    for run in (forward, both):
        tf.nest.map_structure(lambda x: x.numpy(), run())  # trace and compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.nest.map_structure(lambda x: x.numpy(), run())
            times.append(time.perf_counter() - start)
        seconds.append(statistics.median(times))
    return sum(seconds)


def tune(repeats=3, margin=0.05, log=print):
    """The tuned policy: for each group of candidates, the fastest setting (summed over the
    lengths, forward plus forward+backward) unless the default is within `margin` of it."""
    policy = default_policy()
    for group, settings in CANDIDATES.items():
        causal = group == "causal"
        results = []
        for setting in settings:
            candidate = policy.replace(**setting)
            seconds = sum(_time(candidate, causal, length, repeats) for length in LENGTHS)
            log(f"{group}: {setting} {seconds * 1000:.0f} ms")
            results.append((seconds, candidate))
        current = sum(_time(policy, causal, length, repeats) for length in LENGTHS)
        best_seconds, best = min(results, key=lambda r: r[0])
        if best_seconds < (1 - margin) * current:
            policy = best
    return policy.replace(device="tuned")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--path", default=None, help="where to write the policy (default: ~/.keras_seqattn/policy.json)")
    args = parser.parse_args()
    start = time.perf_counter()
    policy = tune(args.repeats)
    path = save_policy(policy, args.path)
    print(f"tuned in {time.perf_counter() - start:.0f} s: {policy}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
