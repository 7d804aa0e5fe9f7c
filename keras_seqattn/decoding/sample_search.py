"""Random sampling: each next token drawn from the model's distribution. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding.sampler import Sampler
from keras_seqattn.ops import checks


class RandomSampler(Sampler):
    """Draws each token from softmax(logits / temperature) with the stateless seed
    fold_in(seed, step), after the repetition penalty and among the `top_k` likeliest and the
    smallest set of likeliest tokens whose probability reaches `top_p` (see `sample_search`).

    Example (with top_k=1, sampling is greedy):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> sampler = ksa.decoding.RandomSampler(temperature=0.7, top_k=1)
    >>> sampler(step_fn, {}, [2], end_id=0, max_length=3, seed=1).sequences.numpy().tolist()
    [[1, 0, 0]]
    """

    name = "sample_search"

    def __init__(self, temperature=1.0, top_k=None, top_p=None, repetition_penalty=1.0):
        checks.check_number("temperature", temperature, 0, strict=True)
        checks.check_positive_int("top_k", top_k, allow_none=True)
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                                  or not 0 < top_p <= 1):
            raise ValueError(f"`top_p` must be None or a number in (0, 1]. Received: top_p={top_p!r}")
        checks.check_number("repetition_penalty", repetition_penalty, 0, strict=True)
        self.temperature, self.top_k = float(temperature), top_k
        self.top_p = None if top_p is None else float(top_p)
        self.repetition_penalty = float(repetition_penalty)

    def settings(self):
        return (self.temperature, self.top_k, self.top_p, self.repetition_penalty)

    def next_tokens(self, logits, step, seed, history, seen):
        vocabulary = logits.shape[-1]
        if self.top_k is not None and vocabulary is not None and self.top_k > vocabulary:
            raise ValueError(f"`top_k` must be at most the vocabulary size, {vocabulary}. Received: top_k={self.top_k}")
        logits = penalize_repetitions(logits, history, seen, self.repetition_penalty) / self.temperature
        logits = keep_likeliest(logits, self.top_k, self.top_p)
        draw = tf.random.stateless_categorical(logits, 1, tf.random.experimental.stateless_fold_in(seed, step))
        return tf.cast(draw[:, 0], tf.int32)


def penalize_repetitions(logits, history, seen, penalty):
    """CTRL's repetition penalty (Keskar et al., 2019): the logit of a token already in `history`
    (where `seen`) is divided by `penalty` when positive, multiplied by it otherwise."""
    if penalty == 1.0:
        return logits
    rows = tf.broadcast_to(tf.range(tf.shape(history)[0])[:, None], tf.shape(history))
    indices = tf.stack([tf.reshape(rows, [-1]), tf.reshape(history, [-1])], axis=1)
    present = tf.tensor_scatter_nd_max(tf.zeros_like(logits), indices, tf.reshape(tf.cast(seen, logits.dtype), [-1]))
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(present > 0, penalized, logits)


def keep_likeliest(logits, top_k, top_p):
    """`logits` with -inf outside the `top_k` likeliest tokens and outside the nucleus: the smallest
    set of likeliest tokens whose probabilities sum to `top_p` or more (Holtzman et al., 2020)."""
    if top_k is None and top_p is None:
        return logits
    ranked, order = tf.math.top_k(logits, k=tf.shape(logits)[-1])  # likeliest first
    keep = tf.ones_like(ranked, tf.bool)
    if top_k is not None:
        keep &= tf.range(tf.shape(ranked)[-1])[None, :] < top_k
    if top_p is not None:  # a token stays when the likelier ones before it sum to less than top_p
        before = tf.math.cumsum(tf.nn.softmax(ranked), axis=-1, exclusive=True)
        keep &= before < top_p
    kept = tf.where(keep, ranked, -float("inf"))
    return tf.gather(kept, tf.argsort(order, axis=-1), batch_dims=1)  # back to vocabulary order


def sample_search(step_fn, initial_state, start_ids, end_id, max_length, temperature=1.0, top_k=None,
                  seed=None, return_alignments=False, jit_compile="auto", top_p=None, repetition_penalty=1.0,
                  prompt=None, prompt_mask=None, prefill_fn=None, stop_ids=None):
    """Decode by drawing each token from softmax(logits / `temperature`), among the `top_k` most
    likely and the `top_p` nucleus when given, until a stop token or `max_length` tokens
    (tensorflow-addons' `SampleEmbeddingSampler`, with keras-hub's top-k and top-p).

    Args:
        step_fn: as in `greedy_search`.
        initial_state: as in `greedy_search`.
        start_ids: as in `greedy_search`.
        end_id: as in `greedy_search`.
        max_length: as in `greedy_search`.
        temperature: float > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: int >= 1, or None to sample from the whole vocabulary. `top_k=1` is greedy search.
        seed: int >= 0 for reproducible draws (step i uses the stateless seed fold_in([seed, 0], i)),
            or None for a fresh random seed at each call.
        return_alignments: as in `greedy_search`.
        jit_compile: as in `greedy_search`.
        top_p: a number in (0, 1], or None: nucleus sampling (Holtzman et al., 2020), among the
            smallest set of likeliest tokens whose probabilities (after the temperature) reach it.
        repetition_penalty: θ > 0 (1: none): a token already in the sequence (prompt or start
            token included) has its logit divided by θ when positive, multiplied when negative
            (Keskar et al., 2019), before the temperature.
        prompt: as in `greedy_search`.
        prompt_mask: as in `greedy_search`.
        prefill_fn: as in `greedy_search`.
        stop_ids: as in `greedy_search`.

    Returns `Decoded(sequences, scores)` (`DecodedWithAlignments` with `return_alignments`,
    `Generated` with a prompt): `sequences (batch, max_length)` int32 (after the stop token,
    filled with `end_id`) and `scores (batch,)`, the summed log-probabilities of the drawn tokens
    up to and including the stop token under the model itself (before the temperature, the
    penalty and the truncation), and the alignments (zero after the end).

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
    sampler = RandomSampler(temperature, top_k, top_p, repetition_penalty)
    return sampler(step_fn, initial_state, start_ids, end_id, max_length, return_alignments, jit_compile,
                   seed=seed, prompt=prompt, prompt_mask=prompt_mask, prefill_fn=prefill_fn,
                   stop_ids=stop_ids)
