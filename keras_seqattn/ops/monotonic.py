"""Monotonic attention (Raffel et al., 2017): the alignment only moves forward over the source.

At output step i, the decoder scans the source from where it last stopped, j = t_{i-1}, and stops
at the first j whose "choose" probability p_{i,j} = sigmoid(e_{i,j}) fires. Training uses the
expected alignment under this process, in closed form (their eq. 12-13, "parallel"):
    α_{i,j} = p_{i,j} · Π_{k<j} (1 - p_{i,k}) · Σ_{l≤j} α_{i-1,l} / Π_{k<l} (1 - p_{i,k}),
decoding the hard process: α_i is one-hot at the first j ≥ t_{i-1} with p_{i,j} > 0.5, or all zeros
when no source position is chosen. α_0 is one-hot on the first source position.
"""

from keras import ops

_TINY = 1e-10


def _exclusive_cumprod(x):
    """Π_{k<j} x_k along the last axis."""
    return ops.cumprod(ops.concatenate([ops.ones_like(x[..., :1]), x[..., :-1]], axis=-1), axis=-1)


def monotonic_alignment(scores, previous_alignment, mask=None, hard=False):
    """The monotonic alignment of one step.

    Args:
        scores: `(batch, S)` energies e (the sigmoid's input, bias and noise included).
        previous_alignment: `(batch, S)` α_{i-1}.
        mask: optional `(batch, S)` boolean, True = may attend; masked positions are never chosen.
        hard: the hard (decoding) alignment instead of the expected one.

    Returns `(batch, S)` float32: α_i. Its rows sum to at most 1 (the rest is the probability that
    the scan passed the end of the source without stopping).

    Example (hard monotonic attention starting at the first memory entry: the scores say stop at
    the second):
    >>> scores = tf.constant([[-10.0, 10.0, 10.0]])
    >>> ksa.ops.monotonic_alignment(scores, tf.constant([[1.0, 0.0, 0.0]]), hard=True).numpy().tolist()
    [[0.0, 1.0, 0.0]]
    """
    scores = ops.cast(scores, "float32")
    previous_alignment = ops.cast(previous_alignment, "float32")
    choose = ops.sigmoid(scores)
    if hard:
        choose = ops.cast(ops.greater(choose, 0.5), "float32")
    if mask is not None:
        choose = ops.where(ops.cast(mask, "bool"), choose, 0.0)
    if hard:  # the scan starts where the previous step stopped
        started = ops.cumsum(previous_alignment, axis=-1)
        return choose * started * _exclusive_cumprod(1.0 - choose * started)
    not_chosen_before = _exclusive_cumprod(1.0 - choose)  # Π_{k<j} (1 - p_k)
    reached = ops.cumsum(previous_alignment / ops.clip(not_chosen_before, _TINY, 1.0), axis=-1)
    return choose * not_chosen_before * reached
