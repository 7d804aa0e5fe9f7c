"""Tuning to this machine: the facts of the CPU (`cpu_model`, `cpu_flags`, whether TensorFlow's
oneDNN optimisations are on), the policy file (`load_policy`, `save_policy`) and the tuner behind
`python -m keras_seqattn.tune`.

The tuner times, on this machine, forward and forward+backward attention (batch 1, 8 heads of 64,
float32) at two lengths for each candidate setting of the flash path: the causal kind and tiles,
the whole-row budget and whether the causal tiles compile with XLA. Each setting is tried against
the defaults, the best kept when it is faster by more than the noise, and the result written where
`get_policy()` finds it (~/.keras_seqattn/policy.json, or $KERAS_SEQATTN_POLICY) with this CPU's
model: on another CPU the file is ignored. It also times attention under both oneDNN settings,
each in a fresh process (the setting is read when TensorFlow starts), and reports the ratio. The
files are pure Python; the tuner and the oneDNN check run TensorFlow.
"""

import dataclasses
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
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


def cpu_flags():
    """The CPU's feature flags (`/proc/cpuinfo`), as a set; empty where they cannot be read.

    Example:
    >>> isinstance(ksa.ops.cpu_flags(), set)
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            return set(next(line.split(":", 1)[1].split() for line in f if line.startswith("flags")))
    except (OSError, StopIteration):
        return set()


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN optimisations in this process (decided when TensorFlow
    starts: `TF_ENABLE_ONEDNN_OPTS`, else on by default only on CPUs with AVX-512 VNNI/BF16 or
    AMX), or None where TensorFlow does not say.

    Example:
    >>> ksa.ops.onednn_enabled() in (True, False, None)
    True
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_advice():
    """What to set, when oneDNN is off on an x86 CPU with AVX2 and the user has not chosen
    (`TF_ENABLE_ONEDNN_OPTS` unset); else None. The figures behind it: benchmarks/README.md.

    Example:
    >>> ksa.ops.onednn_advice() is None or "TF_ENABLE_ONEDNN_OPTS=1" in ksa.ops.onednn_advice()
    True
    """
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ or platform.machine() not in ("x86_64", "AMD64"):
        return None
    if "avx2" not in cpu_flags() or onednn_enabled() is not False:
        return None
    return (
        "TensorFlow's oneDNN optimisations are off on this CPU (AVX2 without AVX-512 VNNI/BF16 or AMX). "
        "Setting TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported made attention 2-3x faster on such a "
        "CPU (keras_seqattn's benchmarks/README.md); `python -m keras_seqattn.tune` measures it here. "
        "Set TF_ENABLE_ONEDNN_OPTS=0 to keep it off and silence this."
    )


def advise_once():
    """Log `onednn_advice()` once per process, as a warning of the "keras_seqattn" logger."""
    advice = onednn_advice()
    if advice and not getattr(advise_once, "done", False):
        advise_once.done = True
        logging.getLogger("keras_seqattn").warning(advice)


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


_ONEDNN_CHILD = """
import statistics, sys, time
import tensorflow as tf
from keras_seqattn.ops.attention import scaled_dot_product_attention
from keras_seqattn.ops.tuning import onednn_enabled
length, repeats = int(sys.argv[1]), int(sys.argv[2])
q, k, v = (tf.random.normal((1, length, 8, 64), seed=i) for i in range(3))
@tf.function
def step():
    grads = []
    for causal in (False, True):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = scaled_dot_product_attention(q, k, v, is_causal=causal)
        grads += tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))
    return grads
step()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    [g.numpy() for g in step()]
    times.append(time.perf_counter() - start)
print(onednn_enabled(), statistics.median(times))
"""


def time_onednn(length=2048, repeats=3):
    """Attention forward+backward, causal and not, at `length` (batch 1, 8 heads of 64) with oneDNN
    off and on, each in a fresh process: `{False: seconds, True: seconds}` (the median of
    `repeats`)."""
    seconds = {}
    for setting in ("0", "1"):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, "-c", _ONEDNN_CHILD, str(length), str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        enabled, median = result.stdout.split()[-2:]
        seconds[enabled == "True"] = float(median)
    return seconds


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
