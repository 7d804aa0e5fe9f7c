"""Hard attention (Xu et al., 2015, section 4.1): the context is the value at one position s drawn
from the attention weights α (a Multinoulli), instead of their expectation Σ_i α_i v_i.

Weights are probabilities over the last axis, 0 where masked; a row with no position left (all
0) selects nothing, so its context is zero. Runs on every Keras backend.
"""

import keras
from keras import ops

from keras_seqattn.ops.attention import masked_softmax
from keras_seqattn.ops.masks import LOWEST_SCORE


def _perturbed_log_weights(weights, seed):
    """log α + Gumbel noise (the Gumbel-max trick: its argmax is a draw from α), float32; masked
    positions get `LOWEST_SCORE`, finite so that gradients stay finite."""
    weights = ops.cast(weights, "float32")
    valid = weights > 0
    log_weights = ops.where(valid, ops.log(ops.where(valid, weights, 1.0)), LOWEST_SCORE)
    uniform = keras.random.uniform(ops.shape(weights), minval=1e-20, maxval=1.0, seed=seed)
    return ops.where(valid, log_weights - ops.log(-ops.log(uniform)), LOWEST_SCORE), valid


def _one_hot_argmax(scores, valid):
    """One-hot of the argmax over the last axis, zero for rows with no valid position."""
    chosen = ops.one_hot(ops.argmax(scores, axis=-1), ops.shape(scores)[-1], dtype="float32")
    return chosen * ops.cast(ops.any(valid, axis=-1, keepdims=True), "float32")


def sample_positions(weights, seed=None):
    """A one-hot `(..., S)` float32 draw of one position from `weights` `(..., S)`; masked
    positions are never drawn. No gradient flows through the draw.

    Example (over many draws, each position comes up about as often as its weight says):
    >>> weights = tf.constant([[0.2, 0.8, 0.0]])
    >>> draws = ksa.ops.sample_positions(tf.repeat(weights, 4000, axis=0), seed=0)
    >>> draws.numpy().astype(float).mean(axis=0).round(1).tolist()
    [0.2, 0.8, 0.0]
    """
    perturbed, valid = _perturbed_log_weights(ops.stop_gradient(weights), seed)
    return _one_hot_argmax(perturbed, valid)


def straight_through_positions(weights, temperature=1.0, seed=None):
    """A draw as `sample_positions` whose forward value is exactly one-hot and whose gradient is
    that of the Gumbel-softmax relaxation softmax((log α + g) / temperature) (Jang et al., 2017;
    the straight-through estimator of Bengio et al., 2013).

    Example (the value is one-hot; the gradient reaches the weights):
    >>> weights = tf.Variable([[0.3, 0.7]])
    >>> with tf.GradientTape() as tape:
    ...     chosen = ksa.ops.straight_through_positions(weights, temperature=0.5, seed=0)
    ...     picked = tf.reduce_sum(chosen * tf.constant([[1.0, 2.0]]))
    >>> sorted(chosen.numpy().ravel().tolist()), bool(np.all(np.isfinite(tape.gradient(picked, weights))))
    ([0.0, 1.0], True)
    """
    perturbed, valid = _perturbed_log_weights(weights, seed)
    hard = _one_hot_argmax(perturbed, valid)
    soft = masked_softmax(perturbed / temperature, valid)
    return hard + (soft - ops.stop_gradient(soft))


def argmax_positions(weights):
    """The one-hot of the most likely position (zeros for a row with no position).

    Example:
    >>> ksa.ops.argmax_positions(tf.constant([[0.2, 0.7, 0.1], [0.0, 0.0, 0.0]])).numpy().tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    weights = ops.cast(weights, "float32")
    return _one_hot_argmax(weights, weights > 0)


def position_log_prob(weights, positions):
    """log α_s of the position `positions` selects, for rows where it is one-hot; 0 for rows that
    select none or read a mixture (the expectation).

    Example:
    >>> weights = tf.constant([[0.25, 0.75]])
    >>> ksa.ops.position_log_prob(weights, tf.constant([[0.0, 1.0]])).numpy().astype(float).round(4).tolist()
    [-0.2877]
    """
    positions = ops.stop_gradient(ops.cast(positions, "float32"))
    chosen = ops.sum(ops.cast(weights, "float32") * positions, axis=-1)
    drawn = (chosen > 0) & (ops.max(positions, axis=-1) == 1.0)
    return ops.where(drawn, ops.log(ops.where(drawn, chosen, 1.0)), 0.0)


def attention_entropy(weights):
    """H[α] = -Σ_i α_i log α_i over the last axis (masked positions, α_i = 0, add nothing).

    Example (uniform over two positions: log 2; a masked position adds nothing):
    >>> ksa.ops.attention_entropy(tf.constant([[0.5, 0.5, 0.0]])).numpy().astype(float).round(4).tolist()
    [0.6931]
    """
    weights = ops.cast(weights, "float32")
    valid = weights > 0
    return -ops.sum(ops.where(valid, weights * ops.log(ops.where(valid, weights, 1.0)), 0.0), axis=-1)
