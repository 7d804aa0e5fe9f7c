"""Random sampling: each next token drawn from the model's distribution, as one XLA-compiled loop."""

import tensorflow as tf

from keras_seqattn.decoding import state as search
from keras_seqattn.decoding.greedy_search import one_path_loop
from keras_seqattn.ops import checks


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

    Returns `sequences (batch, max_length)` int32 (after `end_id`, filled with `end_id`) and
    `scores (batch,)`, the summed log-probabilities of the drawn tokens up to and including
    `end_id` under the model itself (before `temperature` and `top_k`); with `return_alignments`,
    also `alignments (batch, max_length, source_length)` (zero after the end).

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
    start_ids = search.check_search_args("sample_search", start_ids, end_id, max_length)
    checks.check_number("temperature", temperature, 0, strict=True)
    checks.check_positive_int("top_k", top_k, allow_none=True)
    checks.check_non_negative_int("seed", seed, allow_none=True)
    if return_alignments:
        search.attention_of(initial_state, "return_alignments")

    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
    else:
        seed = tf.constant([seed, 0], tf.int64)
    settings = (step_fn, end_id, max_length, bool(return_alignments),
                (float(temperature), top_k))
    return search.run_loop(one_path_loop, settings, jit_compile, start_ids, initial_state, seed)
