"""(e) Serving latency under concurrent load: a string-to-string SavedModel exported with and
without `batch_buckets`, each served in a fresh process, warmed with one request of each power of
two up to 64, then loaded by 8 client threads sending batches of 1-64 strings (the same seeded
sizes for both): request latency p50 / p99 / max, and XLA programs compiled under load.

The model is the date translator of examples/translate_dates.py (bidirectional GRU encoder, GRU
AttentionDecoder with Bahdanau attention, beam search of width 4) with untrained weights, which
decode to the full target length: the costliest request of its shape.

Run: python benchmarks/serving.py [--requests 25] [--clients 8]
"""

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import common
import numpy as np


def export(directory, batch_buckets):
    import keras
    import tensorflow as tf

    import keras_seqattn as ksa
    from keras_seqattn.export import export_translator
    from keras_seqattn.seq2seq import AttentionDecoder
    from keras_seqattn.text import Vocabulary

    class Translator(keras.Model):
        def __init__(self, source_size, target_size):
            super().__init__()
            self.embedding = keras.layers.Embedding(source_size, 32, mask_zero=True)
            self.encoder = keras.layers.Bidirectional(keras.layers.GRU(64, return_sequences=True, return_state=True))
            self.bridge = keras.layers.Dense(128, activation="tanh")
            self.decoder = AttentionDecoder(
                keras.layers.GRUCell(128), ksa.BahdanauAttention(64), vocabulary_size=target_size, embedding_dim=32
            )

        def initial_state(self, source):
            outputs, _, backward = self.encoder(self.embedding(source))
            return self.decoder.initial_state(outputs, encoder_state=self.bridge(backward))

        def step(self, token_ids, state, step):
            return self.decoder.step(token_ids, state, step)

    keras.utils.set_random_seed(0)
    source_vocabulary = Vocabulary(list("abcdefghijklmnopqrstuvwxyz0123456789 ,."), split="characters")
    target_vocabulary = Vocabulary(list("0123456789-"), split="characters")
    model = Translator(source_vocabulary.size, target_vocabulary.size)
    model.decoder(tf.zeros([1, 1], tf.int32), tf.zeros([1, 1, 128]))  # build
    model.initial_state(tf.zeros([1, 40], tf.int32))
    export_translator(
        model,
        directory,
        source_vocabulary,
        target_vocabulary,
        max_source_length=40,
        max_target_length=11,
        beam_width=4,
        batch_buckets=batch_buckets,
    )


def serve(directory, dump, requests, clients):
    """In this (fresh) process: warm up, then the load. Prints one JSON line."""
    import tensorflow as tf

    translate = tf.saved_model.load(directory).signatures["serving_default"]
    text = "sonntag, 22. november 2026"
    warm = time.perf_counter()
    for size in (1, 2, 4, 8, 16, 32, 64):
        translate(text=tf.constant([text] * size))
    warm = time.perf_counter() - warm
    programs_before = len(glob.glob(os.path.join(dump, "*before_optimizations.txt")))
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 65, size=(clients, requests))
    latencies = [[] for _ in range(clients)]

    def client(index):
        for size in sizes[index]:
            start = time.perf_counter()
            translate(text=tf.constant([text] * int(size)))["translation"].numpy()
            latencies[index].append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    every = sorted(t for each in latencies for t in each)
    programs = len(glob.glob(os.path.join(dump, "*before_optimizations.txt"))) - programs_before
    print(
        json.dumps(
            {
                "requests": len(every),
                "distinct_batch_sizes": int(len(set(sizes.ravel()))),
                "warm_up_s": warm,
                "p50_ms": 1000 * statistics.median(every),
                "p99_ms": 1000 * every[int(0.99 * (len(every) - 1))],
                "max_ms": 1000 * every[-1],
                "mean_ms": 1000 * statistics.fmean(every),
                "wall_s": wall,
                "strings_per_s": float(sizes.sum()) / wall,
                "xla_programs_under_load": programs,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)  # internal: directory, dump
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve, args.requests, args.clients)
        return
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for buckets in (False, True):
            export(os.path.join(root, f"buckets_{buckets}"), buckets)
        for run in range(2):  # A B A B: each served twice, alternately
            for buckets in (False, True):
                dump = os.path.join(root, f"dump_{buckets}_{run}")
                os.environ["XLA_FLAGS"] = f"--xla_dump_to={dump} --xla_dump_hlo_as_text"
                result = common.run_child(
                    [
                        os.path.abspath(__file__),
                        "--requests",
                        str(args.requests),
                        "--clients",
                        str(args.clients),
                        "--serve",
                        os.path.join(root, f"buckets_{buckets}"),
                        dump,
                    ]
                )
                rows.append({"batch_buckets": buckets, "run": run + 1, **result})
        del os.environ["XLA_FLAGS"]
    write_results(rows, args)


def write_results(rows, args):
    columns = [
        "batch_buckets",
        "run",
        "requests",
        "distinct_batch_sizes",
        "xla_programs_under_load",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "mean_ms",
        "strings_per_s",
        "warm_up_s",
    ]
    notes = (
        f"{args.clients} client threads x {args.requests} requests, batch sizes uniform in 1-64 (seeded, the "
        "same for both), after a warm-up of one request of each power of two 1-64. Each server is a fresh "
        "process; XLA programs counted from XLA's dumps."
    )
    common.write("serving", rows, columns, "Serving latency: batch buckets off and on", notes)


if __name__ == "__main__":
    sys.exit(main())
