"""(i) Sliding-window attention in the blocked kernel: causal attention with a window of w keys
against full causal attention, B=1, 8 heads, d=64, float32, forward and forward+backward at a long
length (the band's tiles only against every tile below the diagonal), and the peak RSS of the
windowed forward+backward in a fresh process.

Run: python benchmarks/sliding_window.py [--length 32768] [--window 512] [--repeats 3]
"""

import argparse
import json
import sys

import tensorflow as tf
from common import interleaved_medians, peak_rss, reset_peak_rss, run_child, write

import keras_seqattn as ksa

HEADS, DEPTH = 8, 64


def attend(length, window, backward):
    q, k, v = (tf.random.normal((1, length, HEADS, DEPTH), seed=i) for i in range(3))

    def run(q, k, v):
        return ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=True, window=window, flash_attention=True)

    if not backward:
        function = tf.function(run)
        return lambda: function(q, k, v)

    @tf.function
    def both(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = run(q, k, v)
        return tape.gradient(out, [q, k, v], output_gradients=tf.ones_like(out))

    return lambda: both(q, k, v)


def memory(length, window):
    """In this (fresh) process: the peak RSS of one windowed forward+backward. Prints JSON."""
    before = reset_peak_rss()
    tf.nest.map_structure(lambda x: x.numpy(), attend(length, window, True)())
    print(json.dumps({"peak RSS MB": peak_rss(), "RSS before MB": before}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=32768)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        memory(args.length, args.window)
        return
    rows = []
    for backward in (False, True):
        peers = {
            "window": attend(args.length, args.window, backward),
            "full causal": attend(args.length, None, backward),
        }
        seconds = interleaved_medians(peers, repeats=args.repeats, warmup=1)
        rows.append(
            {
                "mode": "forward+backward" if backward else "forward",
                "L": args.length,
                "window": args.window,
                "window ms": seconds["window"] * 1e3,
                "full causal ms": seconds["full causal"] * 1e3,
                "speed-up": seconds["full causal"] / seconds["window"],
            }
        )
        print(rows[-1], flush=True)
    rss = run_child([sys.argv[0], "--memory", "--length", str(args.length), "--window", str(args.window)])
    for row in rows:
        row["windowed forward+backward peak RSS MB"] = rss.get("peak RSS MB", rss.get("error"))
    write(
        "sliding_window",
        rows,
        ["mode", "L", "window", "window ms", "full causal ms", "speed-up", "windowed forward+backward peak RSS MB"],
        "Sliding-window attention against full causal attention, B=1, 8 heads, d=64, float32",
        notes=f"Policy: {ksa.ops.get_policy()}. Medians of {args.repeats} interleaved runs after one warm-up; the "
        "peak RSS in a fresh process (the high-water mark reset after the imports).",
    )


if __name__ == "__main__":
    sys.exit(main())
