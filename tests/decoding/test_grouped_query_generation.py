"""Generation with grouped-query attention (`num_key_value_heads < num_heads`): the caches that
`self_attention_caches` allocates have the key/value heads' shape, and a cached greedy search
writes the tokens that the model's full causal call predicts."""

import keras
import numpy as np
import tensorflow as tf

from keras_seqattn import MultiHeadAttention
from keras_seqattn.decoding import greedy_search, self_attention_caches

VOCAB, DIM, MAX, HEADS, KV_HEADS, KEY_DIM = 13, 16, 20, 4, 2, 6


class GroupedQueryLM:
    """An embedding, two grouped-query self-attention layers with rotary embeddings (residual),
    a vocabulary projection."""

    def __init__(self):
        keras.utils.set_random_seed(3)
        self.embedding = keras.layers.Embedding(VOCAB, DIM)
        self.layers = [
            MultiHeadAttention(HEADS, KEY_DIM, num_key_value_heads=KV_HEADS, rope_max_wavelength=100) for _ in range(2)
        ]
        self.logits = keras.layers.Dense(VOCAB)
        self.full(tf.zeros([1, 3], tf.int32))  # builds every layer

    def full(self, ids):
        """The uncached causal call over whole sequences: logits (batch, T, VOCAB)."""
        x = self.embedding(ids)
        for layer in self.layers:
            x = x + layer(x, x, use_causal_mask=True)
        return self.logits(x)

    def step(self, token_ids, state, step):
        x, caches = self.embedding(token_ids[:, None]), []
        for layer, cache in zip(self.layers, state):
            out, cache = layer(x, x, cache=cache, cache_update_index=step, use_causal_mask=True)
            x, caches = x + out, caches + [cache]
        return self.logits(x)[:, 0], caches


def test_caches_have_the_key_value_heads_shape():
    model = GroupedQueryLM()
    caches = self_attention_caches(model.layers, batch_size=3, max_length=MAX)
    assert [tuple(c.shape) for c in caches] == [(3, 2, MAX, KV_HEADS, KEY_DIM)] * 2


def test_cached_greedy_generation_writes_what_the_full_call_predicts():
    model = GroupedQueryLM()
    prompt = np.array([[1, 5, 2, 7], [4, 4, 9, 3]], "int32")
    found = greedy_search(
        model.step,
        self_attention_caches(model.layers, batch_size=2, max_length=MAX),
        None,
        end_id=0,
        max_length=8,
        prompt=prompt,
        jit_compile=False,
    )
    sequences = found.sequences.numpy()
    predicted = np.argmax(model.full(tf.constant(sequences)).numpy(), axis=-1)
    for row, length in enumerate(found.lengths.numpy()):
        # Every generated token is the argmax of the full call at the position before it.
        generated = sequences[row, prompt.shape[1] : length]
        np.testing.assert_array_equal(generated, predicted[row, prompt.shape[1] - 1 : length - 1])
        assert len(generated) > 0
