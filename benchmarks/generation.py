"""(h) Generation with a GPT-2-shaped decoder stack: (a) ours against keras-hub's
`GPT2CausalLM.generate` with the same weights and greedy sampling, a 128-token prompt and 128 new
tokens, batch 1 and 8, new tokens per second; (b) a 2,048-token prompt prefilled in one call
against fed one token at a time. The stack is GPT-2 small's layers (width 768, 12 heads, MLP
3072, vocabulary 50,257) with fewer of them (4 by default) for this CPU, random weights.

Our model reuses keras-hub's embeddings and final norm and gets its `TransformerDecoder`
weights from keras-hub's blocks (ours is a drop-in); keras-hub's generation stops at no token
(its stop ids are None without a preprocessor), so ours is given an end token it never chooses
(its logit is masked) and both generate all 128 tokens. The outputs are compared token by token.

Run: python benchmarks/generation.py [--layers 4] [--repeats 3]
"""

import argparse

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from common import interleaved_medians, write

import keras_seqattn as ksa
from keras_seqattn.decoding import greedy_search, self_attention_caches

VOCAB, WIDTH, HEADS, MLP = 50257, 768, 12, 3072
END = VOCAB - 1  # GPT-2's <|endoftext|>


def build(layers, max_length):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=layers,
        num_heads=HEADS,
        hidden_dim=WIDTH,
        intermediate_dim=MLP,
        dropout=0.0,
        max_sequence_length=max_length,
    )
    theirs = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    theirs.compile(sampler="greedy")
    gelu = lambda x: keras.activations.gelu(x, approximate=True)
    blocks = [ksa.TransformerDecoder(MLP, HEADS, normalize_first=True, activation=gelu) for _ in range(layers)]
    x = tf.zeros([1, 2, WIDTH])
    for block, their_block in zip(blocks, backbone.transformer_layers):
        block(x)
        block.set_weights(their_block.get_weights())
    return theirs, Ours(backbone, blocks, max_length)


class Ours:
    """keras-hub's embeddings and final norm around our blocks; `prefill` and `step` for the searches."""

    def __init__(self, backbone, blocks, max_length):
        self.backbone, self.blocks, self.max_length = backbone, blocks, max_length

    def initial_state(self, batch):
        return {"caches": self_attention_caches(self.blocks, batch, self.max_length)}

    def _run(self, ids, state, index):
        tokens = self.backbone.token_embedding(ids)
        x = tokens + self.backbone.position_embedding(tokens, start_index=index)
        caches = []
        for block, cache in zip(self.blocks, state["caches"]):
            x, cache = block(x, self_attention_cache=cache, self_attention_cache_update_index=index)
            caches.append(cache)
        logits = self.backbone.token_embedding(self.backbone.layer_norm(x), reverse=True)
        return logits, {"caches": caches}

    def prefill(self, prompt, state):
        return self._run(prompt, state, 0)[1]

    def step(self, token_ids, state, step):
        logits, state = self._run(token_ids[:, None], state, step)
        return logits[:, 0] + tf.one_hot(END, VOCAB, on_value=-1e9), state  # END is never chosen


def products_alone(layers, batch, new, repeats):
    """Seconds for the new tokens' matrix products alone (each layer's QKV, output and MLP
    projections, then the logits): the memory traffic of reading every weight once per token,
    which no implementation avoids (at batch 1 it bounds both peers)."""
    shapes = [(WIDTH, 3 * WIDTH), (WIDTH, WIDTH), (WIDTH, MLP), (MLP, WIDTH)] * layers + [(WIDTH, VOCAB)]
    weights = [tf.random.normal(shape) * 0.01 for shape in shapes]
    x = tf.random.normal([batch, WIDTH])

    @tf.function
    def one_token(x):
        return [tf.matmul(x if w.shape[0] == WIDTH else tf.tile(x, [1, MLP // WIDTH]), w) for w in weights]

    seconds = interleaved_medians({"products": lambda: one_token(x)}, repeats=repeats * 10, warmup=3)
    return seconds["products"] * new


def generation(layers, repeats):
    rows = []
    prompt_length, new = 128, 128
    theirs, ours = build(layers, prompt_length + new)
    for batch in (1, 8):
        rng = np.random.default_rng(batch)
        prompt = rng.integers(0, END, size=(batch, prompt_length)).astype("int32")
        inputs = {
            "token_ids": np.concatenate([prompt, np.zeros((batch, new), "int32")], 1),
            "padding_mask": np.arange(prompt_length + new)[None, :] < np.full((batch, 1), prompt_length),
        }

        def run_theirs(inputs=inputs):
            return tf.constant(
                theirs.generate(inputs, max_length=prompt_length + new, stop_token_ids=None)["token_ids"]
            )

        def run_ours(batch=batch, prompt=prompt):
            return greedy_search(
                ours.step,
                ours.initial_state(batch),
                None,
                end_id=END,
                max_length=new,
                prompt=prompt,
                prefill_fn=ours.prefill,
            ).sequences

        equal = float(np.mean(run_ours().numpy()[:, prompt_length:] == run_theirs().numpy()[:, prompt_length:]))
        seconds = interleaved_medians({"ours": run_ours, "keras_hub": run_theirs}, repeats=repeats, warmup=1)
        rows.append(
            {
                "workload": f"generate, batch {batch}",
                "ours ms": seconds["ours"] * 1e3,
                "keras_hub ms": seconds["keras_hub"] * 1e3,
                "products alone ms": products_alone(layers, batch, new, repeats) * 1e3,
                "ours new tokens/s": batch * new / seconds["ours"],
                "keras_hub new tokens/s": batch * new / seconds["keras_hub"],
                "speed-up": seconds["keras_hub"] / seconds["ours"],
                "same tokens": equal,
            }
        )
        print(rows[-1], flush=True)
    return rows


def prefill(layers, repeats):
    prompt_length = 2048
    _, ours = build(layers, prompt_length + 1)
    prompt = np.random.default_rng(0).integers(0, END, size=(1, prompt_length)).astype("int32")

    def run(prefill_fn):
        return lambda: (
            greedy_search(
                ours.step, ours.initial_state(1), None, end_id=END, max_length=1, prompt=prompt, prefill_fn=prefill_fn
            ).sequences
        )

    first = run(ours.prefill)().numpy()
    equal = bool(np.array_equal(first, run(None)().numpy()))
    seconds = interleaved_medians(
        {"prefill": run(ours.prefill), "token_by_token": run(None)}, repeats=repeats, warmup=1
    )
    return [
        {
            "workload": f"prompt of {prompt_length} then 1 token",
            "ours ms": seconds["prefill"] * 1e3,
            "token-by-token ms": seconds["token_by_token"] * 1e3,
            "speed-up": seconds["token_by_token"] / seconds["prefill"],
            "same tokens": float(equal),
        }
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = generation(args.layers, args.repeats) + prefill(args.layers, 1)  # (b): 93 s a run token by token
    write(
        "generation",
        rows,
        [
            "workload",
            "ours ms",
            "keras_hub ms",
            "products alone ms",
            "token-by-token ms",
            "ours new tokens/s",
            "keras_hub new tokens/s",
            "speed-up",
            "same tokens",
        ],
        f"Generation: a GPT-2-shaped stack of {args.layers} layers (width 768, 12 heads), greedy",
        notes="(a) new tokens per second of ours (greedy_search over the decoder stack's caches, the prompt "
        "prefilled in one call, one loop, compiled with XLA as the policy's search_xla_rows says) against "
        "keras-hub's GPT2CausalLM.generate with the same weights; `same tokens`: the fraction of generated "
        "tokens both chose; `products alone`: the time of the same tokens' matrix products by themselves "
        "(every weight read once per token). (b) a prompt prefilled in one call against fed token by token "
        f"through the same loop. Medians of {args.repeats} interleaved runs after one warm-up each ((b): one "
        "run each).",
    )


if __name__ == "__main__":
    main()
