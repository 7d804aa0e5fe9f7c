"""A tiny decoder-only language model for the generation tests: an embedding, two
`TransformerDecoder` blocks with rotary embeddings, a vocabulary projection; `step` feeds one token
at a position through the caches, `prefill` a whole prompt at once."""

import keras
import tensorflow as tf

from keras_seqattn import TransformerDecoder
from keras_seqattn.decoding import self_attention_caches

VOCAB, DIM, MAX = 11, 16, 24


class TinyLM:
    def __init__(self, seed=0):
        keras.utils.set_random_seed(seed)
        self.embedding = keras.layers.Embedding(VOCAB, DIM)
        self.blocks = [TransformerDecoder(32, 2, rope_max_wavelength=100) for _ in range(2)]
        self.logits = keras.layers.Dense(VOCAB)
        x = self.embedding(tf.zeros([1, 3], tf.int32))
        for block in self.blocks:
            x = block(x)
        self.logits(x)

    @property
    def variables(self):
        return [v for layer in (self.embedding, *self.blocks, self.logits) for v in layer.variables]

    def initial_state(self, batch):
        return {"caches": self_attention_caches(self.blocks, batch, MAX)}

    def _run(self, ids, state, index):
        x, caches = self.embedding(ids), []
        for block, cache in zip(self.blocks, state["caches"]):
            x, cache = block(x, self_attention_cache=cache, self_attention_cache_update_index=index)
            caches.append(cache)
        return self.logits(x), {"caches": caches}

    def step(self, token_ids, state, step):
        logits, state = self._run(token_ids[:, None], state, step)
        return logits[:, 0], state

    def prefill(self, prompt, state):
        return self._run(prompt, state, 0)[1]
