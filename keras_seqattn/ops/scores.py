"""Alignment scores: `(batch, Tq, dq)` queries against `(batch, Tk, dk)` keys give `(batch, Tq, Tk)`.

The four scores of Bahdanau et al. (2015) and Luong et al. (2015) reduce to two computations once
the keys are projected, which is why the layers project keys once (`project_key`) and score after:

- dot:      score(q, h) = qᵀh                                   -> `dot_score(q, h)`
- general:  score(q, h) = qᵀ W_a h                              -> `dot_score(q, h @ W_aᵀ)`
- additive: score(s, h) = vᵀ tanh(W₁s + W₂h [+ b])              -> `additive_score(W₁s, W₂h, v, b)`
- concat:   score(q, h) = v_aᵀ tanh(W_a[q; h]) = v_aᵀ tanh(W_q q + W_h h)
                                                                -> `additive_score(W_q q, W_h h, v_a)`
"""

from keras import ops


def dot_score(query, key, scale=None):
    """`scale · qᵀk` for every query/key pair: `(batch, Tq, d)`, `(batch, Tk, d)` -> `(batch, Tq, Tk)`.

    Example:
    >>> ksa.ops.dot_score(tf.constant([[[1.0, 2.0]]]), tf.constant([[[3.0, 4.0], [1.0, 0.0]]])).numpy().tolist()
    [[[11.0, 1.0]]]
    """
    scores = ops.einsum("bqd,bkd->bqk", query, key)
    if scale is not None:
        scores = scores * ops.cast(scale, scores.dtype)
    return scores


def additive_score(query, key, attention_v, bias=None):
    """`vᵀ tanh(q + k + b)` for every pair of projected query `(batch, Tq, U)` and key
    `(batch, Tk, U)`, with `v` and `b` of shape `(U,)`: gives `(batch, Tq, Tk)`.

    Example (tanh(0) = 0, so a zero query and key score 0):
    >>> ksa.ops.additive_score(tf.zeros((1, 1, 3)), tf.zeros((1, 2, 3)), tf.ones((3,))).numpy().tolist()
    [[[0.0, 0.0]]]
    """
    hidden = ops.expand_dims(query, 2) + ops.expand_dims(key, 1)
    if bias is not None:
        hidden = hidden + bias
    return ops.einsum("bqku,u->bqk", ops.tanh(hidden), attention_v)
