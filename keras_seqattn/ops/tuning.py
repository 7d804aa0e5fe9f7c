"""Tuning the attention policy to this machine, and the policy file it writes: `cpu_model`,
`load_policy`, `save_policy` and the tuner behind `python -m keras_seqattn.tune`.

The tuner times, on this machine, forward and forward+backward attention (batch 1, 8 heads of 64,
float32) at two lengths for each candidate setting of the flash path: the causal kind and tiles,
the whole-row budget and whether the causal tiles compile with XLA. Each setting is tried against
the defaults, the best kept when it is faster by more than the noise, and the result written where
`get_policy()` finds it (~/.keras_seqattn/policy.json, or $KERAS_SEQATTN_POLICY) with this CPU's
model: on another CPU the file is ignored. The files are pure Python; the tuner runs TensorFlow.
"""

import dataclasses
import json
import os
import platform
import statistics
import time

from keras_seqattn.ops.policy import AttentionPolicy, default_policy

POLICY_FILE = os.path.join(os.path.expanduser("~"), ".keras_seqattn", "policy.json")
LENGTHS = (2048, 4096)
CANDIDATES = {  # group -> the settings tried (the default's own among them)
    "causal": [
        dict(causal_kind="online", causal_tiles=(256, 256)),
        dict(causal_kind="online", causal_tiles=(512, 256)),
        dict(causal_kind="rows", causal_rows=256),
        dict(causal_kind="online", causal_tiles=(256, 256), compile="never"),
    ],
    "rows": [dict(row_scores=1 << 20), dict(row_scores=1 << 21)],
}


def cpu_model():
    """The CPU's model name (what a tuned policy is tuned for).

    Example:
    >>> isinstance(ksa.ops.cpu_model(), str)
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def load_policy(path=None):
    """The policy in `path` (default: $KERAS_SEQATTN_POLICY, else ~/.keras_seqattn/policy.json),
    or None when there is none, or when it was tuned on another CPU (a tuned policy records its
    CPU).

    Example (no file: None):
    >>> import os, tempfile
    >>> ksa.ops.load_policy(os.path.join(tempfile.mkdtemp(), "none.json")) is None
    True
    """
    path = path or os.environ.get("KERAS_SEQATTN_POLICY") or POLICY_FILE
    if not os.path.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    if saved.get("cpu") not in (None, cpu_model()):
        return None
    return AttentionPolicy.from_dict(saved["policy"])


def save_policy(policy, path=None):
    """Write `policy` (for this CPU) where `load_policy` finds it; return the path.

    Example:
    >>> import os, tempfile
    >>> path = ksa.ops.save_policy(ksa.ops.AttentionPolicy(causal_rows=128),
    ...                            os.path.join(tempfile.mkdtemp(), "policy.json"))
    >>> ksa.ops.load_policy(path).causal_rows
    128
    """
    path = path or os.environ.get("KERAS_SEQATTN_POLICY") or POLICY_FILE
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"cpu": cpu_model(), "policy": policy.to_dict()}, f, indent=1)
    return path


def _time(policy, causal, length, repeats):
    """The median seconds of forward plus forward+backward at `length` under `policy`."""
    import tensorflow as tf

    from keras_seqattn.ops.attention import scaled_dot_product_attention

    q, k, v = (tf.random.normal((1, length, 8, 64), seed=i) for i in range(3))

    def attend():
        return scaled_dot_product_attention(q, k, v, is_causal=causal, flash_attention=True, policy=policy)

    @tf.function
    def forward():
        return attend()

    @tf.function
    def both():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = attend()
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
            candidate = dataclasses.replace(policy, **setting)
            seconds = sum(_time(candidate, causal, length, repeats) for length in LENGTHS)
            log(f"{group}: {setting} {seconds * 1000:.0f} ms")
            results.append((seconds, candidate))
        current = sum(_time(policy, causal, length, repeats) for length in LENGTHS)
        best_seconds, best = min(results, key=lambda r: r[0])
        if best_seconds < (1 - margin) * current:
            policy = best
    return dataclasses.replace(policy, device=f"tuned:{cpu_model()}")


def main(argv=None):
    import argparse

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
