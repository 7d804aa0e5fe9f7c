"""What every benchmark shares: the machine, interleaved timing, the matmul ceiling, the results."""

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

# torch's OpenMP threads otherwise spin for a while after each call, taking the cores from whatever
# runs next: measured, that made the peer timed right after torch up to 1.7x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import keras
import tensorflow as tf

import keras_seqattn as ksa

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


_VECTOR_EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")


def machine():
    cpu, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = set(next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags")))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "vector_extensions": [x for x in _VECTOR_EXTENSIONS if x in flags],
        "onednn": ksa.ops.onednn_enabled(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def interleaved_medians(functions, repeats=5, warmup=2, min_seconds=0.0):
    """The median seconds of each of `interleaved_times(functions, repeats, warmup, min_seconds)`."""
    times = interleaved_times(functions, repeats, warmup, min_seconds)
    return {name: statistics.median(t) for name, t in times.items()}


def interleaved_times(functions, repeats=5, warmup=2, min_seconds=0.0):
    """Time `functions` (name -> callable returning something to block on) interleaved: each round
    runs every peer once, in a fresh (seeded) random order so that no peer always follows the same
    one; after `warmup` rounds. At least `repeats` rounds, and more for fast peers, up to 200 or
    about `min_seconds` in all (judged by the last warm-up round): medians of 5 runs of a 2 ms
    call differed by up to a third from one benchmark run to the next. The seconds of each run,
    per peer."""
    for _ in range(warmup):
        start = time.perf_counter()
        for run in functions.values():
            block(run())
        round_seconds = time.perf_counter() - start
    rounds = max(repeats, min(200, int(min_seconds / round_seconds))) if warmup else repeats
    times = {name: [] for name in functions}
    names, order = list(functions), random.Random(0)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            run = functions[name]
            start = time.perf_counter()
            block(run())
            times[name].append(time.perf_counter() - start)
    return times


def reset_peak_rss():
    """Start a new peak-RSS measurement (Linux): the process's high-water mark drops to its
    current RSS, so that a transient peak while importing does not hide what follows. Returns the
    current RSS in MB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def peak_rss():
    """The peak RSS in MB since the start of the process or the last `reset_peak_rss()`."""
    return _status_mb("VmHWM")


def _status_mb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def run_child(arguments):
    """Run `python *arguments` in a fresh process; the JSON object its last line of output
    prints, or {"error": the last line of its stderr} when it fails."""
    result = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:120]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def block(result):
    """Wait for `result` (tensors of either framework) to be computed."""
    for x in tf.nest.flatten(result):
        x.numpy()


def matmul_ceiling(size=2048):
    """GFLOP/s of a `size`³ float32 matmul (XLA), the ceiling a CPU kernel can hope for: its best
    run in about 3 s (a median of 5 once came out at 119 GFLOP/s where others gave 175-195)."""
    a = tf.random.normal([size, size])
    matmul = tf.function(lambda a: a @ a, jit_compile=True)
    seconds = min(interleaved_times({"matmul": lambda: matmul(a)}, min_seconds=3.0)["matmul"])
    return 2 * size**3 / seconds / 1e9


def write(name, rows, columns, title, notes=""):
    """benchmarks/results/NAME.json (the rows and the machine) and NAME.md (a table)."""
    os.makedirs(RESULTS, exist_ok=True)
    info = machine()
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump({"machine": info, "rows": rows}, f, indent=1)
    lines = [
        f"# {title}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores "
        f"({', '.join(info['vector_extensions']) or 'no AVX2'}); TensorFlow "
        f"{info['tensorflow']}, Keras {info['keras']}, Python {info['python']}; oneDNN "
        f"{_onednn(info)}.",
        "",
    ]
    if notes:
        lines += [notes, ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_show(row.get(c, "")) for c in columns) + " |")
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def _onednn(info):
    state = {True: "on", False: "off", None: "unknown"}[info["onednn"]]
    chosen = info["TF_ENABLE_ONEDNN_OPTS"]
    return f"{state} (TF_ENABLE_ONEDNN_OPTS={chosen})" if chosen is not None else f"{state} (TensorFlow's default)"


def _show(value):
    return f"{value:.2f}" if isinstance(value, float) else str(value)
