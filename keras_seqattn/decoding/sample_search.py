"""Random sampling: each next token drawn from the model's distribution. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding.sampler import Sampler, check_seed
from keras_seqattn.ops import checks


class RandomSampler(Sampler):
    """Draws each token from softmax(log p / temperature), among the `top_k` likeliest when given,
    with the stateless seed fold_in(seed, step) (see `sample_search`)."""

    name = "sample_search"

    def __init__(self, temperature=1.0, top_k=None):
        checks.check_number("temperature", temperature, 0, strict=True)
        checks.check_positive_int("top_k", top_k, allow_none=True)
        self.temperature, self.top_k = float(temperature), top_k

    def settings(self):
        return (self.temperature, self.top_k)

    def next_tokens(self, log_probs, step, seed):
        vocabulary = log_probs.shape[-1]
        if self.top_k is not None and vocabulary is not None and self.top_k > vocabulary:
            raise ValueError(f"`top_k` must be at most the vocabulary size, {vocabulary}. Received: top_k={self.top_k}")
        logits = log_probs / self.temperature
        seed = tf.random.experimental.stateless_fold_in(seed, step)
        if self.top_k is None:
            return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[:, 0], tf.int32)
        best, ids = tf.math.top_k(logits, k=self.top_k)
        return tf.gather(ids, tf.random.stateless_categorical(best, 1, seed), batch_dims=1)[:, 0]


def sample_search(step_fn, initial_state, start_ids, end_id, max_length, temperature=1.0, top_k=None,
                  seed=None, return_alignments=False, jit_compile=True):
    """Decode by drawing each token from softmax(logits / `temperature`), optionally among the
    `top_k` most likely, until `end_id` or `max_length` tokens (tensorflow-addons'
    `SampleEmbeddingSampler`, with top-k).

    Args:
        step_fn, initial_state, start_ids, end_id, max_length: as in `greedy_search`.
        temperature: float > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: int >= 1, or None to sample from the whole vocabulary. `top_k=1` is greedy search.
        seed: int >= 0 for reproducible draws (step i uses the stateless seed fold_in([seed, 0], i)),
            or None for a fresh random seed at each call.
        return_alignments, jit_compile: as in `greedy_search`.

    Returns `Decoded(sequences, scores)` (`DecodedWithAlignments` with `return_alignments`):
    `sequences (batch, max_length)` int32 (after `end_id`, filled with `end_id`) and `scores
    (batch,)`, the summed log-probabilities of the drawn tokens up to and including `end_id` under
    the model itself (before `temperature` and `top_k`), and the alignments (zero after the end).

    Example (a bigram model; token 1 is the likeliest after 2, and then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> def draw(**kwargs):
    ...     return sample_search(step_fn, {}, tf.constant([2, 2]), end_id=0, max_length=4, **kwargs)
    >>> bool(tf.reduce_all(draw(seed=7)[0] == draw(seed=7)[0]))  # the same seed, the same draws
    True
    >>> draw(top_k=1)[0].numpy().tolist()  # greedy
    [[1, 0, 0, 0], [1, 0, 0, 0]]
    """
    sampler = RandomSampler(temperature, top_k)
    return sampler(step_fn, initial_state, start_ids, end_id, max_length, return_alignments, jit_compile,
                   seed=check_seed(seed))
