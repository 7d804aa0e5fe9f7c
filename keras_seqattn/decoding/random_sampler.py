"""Random sampling: each next token drawn from the model's distribution. TensorFlow only."""

import keras
import tensorflow as tf

from keras_seqattn import checks
from keras_seqattn.decoding.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_seqattn")
class RandomSampler(Sampler):
    """Draws each token from softmax(logits / `temperature`), among the `top_k` likeliest and the
    `top_p` nucleus when given, until a stop token or `max_length` tokens (tensorflow-addons'
    `SampleEmbeddingSampler`, with keras-hub's top-k and top-p). Step i draws with the stateless
    seed fold_in([seed, 0], i), so that a seeded call draws the same tokens every time.

    Args:
        temperature: float > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: int >= 1, or None to sample from the whole vocabulary. `top_k=1` is greedy search.
        top_p: a number in (0, 1], or None: nucleus sampling (Holtzman et al., 2020), among the
            smallest set of likeliest tokens whose probabilities (after the temperature) reach it.
        repetition_penalty: θ > 0 (1: none): a token already in the sequence (prompt or start
            token included) has its logit divided by θ when positive, multiplied when negative
            (Keskar et al., 2019), before the temperature.

    Call arguments: as `Sampler`'s, `seed` among them. The scores are the summed
    log-probabilities of the drawn tokens under the model itself (before the temperature, the
    penalty and the truncation).

    Example (with top_k=1, sampling is greedy):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> sampler = ksa.decoding.RandomSampler(temperature=0.7, top_k=1)
    >>> sampler(step_fn, {}, [2], end_id=0, max_length=3, seed=1).sequences.numpy().tolist()
    [[1, 0, 0]]
    """

    def __init__(self, temperature=1.0, top_k=None, top_p=None, repetition_penalty=1.0):
        checks.check_number("temperature", temperature, 0, strict=True)
        checks.check_positive_int("top_k", top_k, allow_none=True)
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
            raise ValueError(f"`top_p` must be None or a number in (0, 1]. Received: top_p={top_p!r}")
        checks.check_number("repetition_penalty", repetition_penalty, 0, strict=True)
        self.temperature, self.top_k = float(temperature), top_k
        self.top_p = None if top_p is None else float(top_p)
        self.repetition_penalty = float(repetition_penalty)

    def get_config(self):
        return dict(
            temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, repetition_penalty=self.repetition_penalty
        )

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
