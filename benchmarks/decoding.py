"""Benchmark (d): autoregressive decoding of 256 new tokens with a 2-block decoder-only
Transformer (`keras_seqattn.TransformerDecoder`, d 256, 4 heads, FFN 1024), cached (each step
attends its one new token to the key/value cache) vs uncached (each step recomputes the whole
sequence, as a model without a cache must): tokens/s, and the XLA compile time of the first call.
Both run through `keras_seqattn.decoding.greedy_search` as one XLA-compiled loop.

Run: python benchmarks/decoding.py [--new-tokens 256] [--batch 4] [--repeats 5]
"""

import argparse
import time

import keras
import tensorflow as tf
from common import block, interleaved_medians, matmul_ceiling, write  # first: it sets up torch's threads

import keras_seqattn as ksa
from keras_seqattn.decoding import greedy_search

VOCAB, DIM, HEADS, FFN, BLOCKS = 1000, 256, 4, 1024, 2
END = VOCAB - 1  # its logit is masked: every run decodes all the new tokens
NEVER_END = tf.one_hot(END, VOCAB, on_value=-1e9)


class LanguageModel(keras.Model):
    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.embedding = keras.layers.Embedding(VOCAB, DIM)
        self.positions = ksa.PositionalEncoding()
        self.decoders = [ksa.TransformerDecoder(FFN, HEADS) for _ in range(BLOCKS)]
        self.logits = keras.layers.Dense(VOCAB)

    def call(self, token_ids):  # (batch, T) -> (batch, T, VOCAB), causal
        x = self.positions(self.embedding(token_ids))
        for decoder in self.decoders:
            x = decoder(x)
        return self.logits(x)

    def cached_state(self, batch):
        return {"cache": [tf.zeros([batch, 2, self.max_length, HEADS, DIM // HEADS])] * BLOCKS}

    def cached_step(self, token_ids, state, step):
        """One new token against the cache: (rows,) -> logits (rows, VOCAB)."""
        x = self.positions(self.embedding(token_ids[:, None]), start_index=step)
        caches = []
        for decoder, cache in zip(self.decoders, state["cache"]):
            x, cache = decoder(x, self_attention_cache=cache, self_attention_cache_update_index=step)
            caches.append(cache)
        return self.logits(x[:, 0]) + NEVER_END, {"cache": caches}

    def uncached_state(self, batch):
        return {"tokens": tf.zeros([batch, self.max_length], "int32")}

    def uncached_step(self, token_ids, state, step):
        """The whole sequence again (causal, so positions after `step` do not matter)."""
        tokens = tf.tensor_scatter_nd_update(  # tokens[:, step] = token_ids
            tf.transpose(state["tokens"]), [[step]], tf.cast(token_ids, "int32")[None]
        )
        tokens = tf.transpose(tokens)
        return self(tokens)[:, step] + NEVER_END, {"tokens": tokens}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="decoding")
    args = parser.parse_args()
    ceiling = matmul_ceiling()
    keras.utils.set_random_seed(0)
    model = LanguageModel(args.new_tokens)
    model(tf.zeros([1, 4], "int32"))  # build
    start_ids = tf.ones([args.batch], "int32")
    end_id = END
    searches = {
        "cached": lambda: greedy_search(
            model.cached_step, model.cached_state(args.batch), start_ids, end_id=end_id, max_length=args.new_tokens
        ),
        "uncached": lambda: greedy_search(
            model.uncached_step, model.uncached_state(args.batch), start_ids, end_id=end_id, max_length=args.new_tokens
        ),
    }
    first = {}
    for name, search in searches.items():  # the first call traces and compiles
        start = time.perf_counter()
        block(search())
        first[name] = time.perf_counter() - start
    same = tf.reduce_all(searches["cached"]()[0] == searches["uncached"]()[0]).numpy()
    seconds = interleaved_medians(searches, repeats=args.repeats, warmup=1)
    tokens = args.batch * args.new_tokens
    rows = [
        {
            "decoding": name,
            "tokens/s": tokens / seconds[name],
            "ms per run": seconds[name] * 1e3,
            "first call s": first[name],
            "trace + compile s": first[name] - seconds[name],
            "speed-up vs uncached": seconds["uncached"] / seconds[name],
        }
        for name in searches
    ]
    write(
        args.name,
        rows,
        ["decoding", "tokens/s", "ms per run", "first call s", "trace + compile s", "speed-up vs uncached"],
        f"Decoding {args.new_tokens} new tokens: {BLOCKS}-block decoder-only Transformer, d {DIM}, "
        f"{HEADS} heads, FFN {FFN}, batch {args.batch}, float32, greedy",
        notes=f"Medians of {args.repeats} interleaved runs after warm-up; trace + compile = the first "
        f"call minus the median. Cached and uncached gave the same tokens: {bool(same)}. "
        f"Matmul ceiling (2048³ float32, XLA, its best run) in the same run: {ceiling:.0f} GFLOP/s.",
    )


if __name__ == "__main__":
    main()
