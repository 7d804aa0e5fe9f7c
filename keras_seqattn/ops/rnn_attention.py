"""The attention of RNN encoder-decoders from additive (Bahdanau) and dot (Luong) scores, with
Luong's local windows: masked softmax (in float32) and the weighted sum of values, as kernels that
compile with XLA where the attention policy says so. Every Keras backend."""

from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.attention import masked_softmax
from keras_seqattn.ops.masks import combine_masks, local_window_mask
from keras_seqattn.ops.policy import get_policy
from keras_seqattn.ops.scores import additive_score, dot_score
from keras_seqattn.ops.xla import xla_kernel


def _attend(scores, value, mask, centers, window, multiplier, gaussian):
    """Masked softmax of `scores` (with an optional local window), then the context."""
    key_length = ops.shape(scores)[-1]
    if centers is not None:
        mask = combine_masks(mask, local_window_mask(centers, key_length, window))
    weights = masked_softmax(scores, mask)
    if gaussian:  # Luong's local-p: exp(-(s - p_t)² / (2σ²)), σ = D / 2
        positions = ops.cast(ops.arange(key_length), "float32")
        sigma = ops.cast(window, "float32") / 2.0
        weights = weights * ops.exp(-ops.square(positions - centers[..., None]) / (2.0 * sigma**2))
    used = weights if multiplier is None else weights * multiplier
    return ops.matmul(ops.cast(used, value.dtype), value), ops.cast(weights, value.dtype)


@xla_kernel
def _additive_kernel(query, key, value, attention_v, bias, mask, centers, window, multiplier, *, gaussian):
    scores = additive_score(query, key, attention_v, bias)
    return _attend(scores, value, mask, centers, window, multiplier, gaussian)


@xla_kernel
def _dot_kernel(query, key, value, scale, mask, centers, window, multiplier, *, gaussian):
    return _attend(dot_score(query, key, scale), value, mask, centers, window, multiplier, gaussian)


def _local_window(query, key, value, mask, window_centers, window, gaussian):
    """Check the inputs of the score kernels; return the window centres and width as tensors."""
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        checks.check_rank(name, tensor, (3,))
    checks.check_dims_match("query", query.shape[0], "value", value.shape[0], "batch size")
    checks.check_dims_match("key", key.shape[0], "value", value.shape[0], "batch size")
    checks.check_dims_match("key", key.shape[1], "value", value.shape[1], "sequence length")
    checks.check_dims_match("query", query.shape[-1], "key", key.shape[-1], "depth")
    checks.check_mask_shape("mask", mask, (query.shape[0], query.shape[1], key.shape[1]))
    if window_centers is None:
        if gaussian:
            raise ValueError("`gaussian=True` needs `window_centers` and `window`. Received: window_centers=None")
        return None, None
    checks.check_mask_shape("window_centers", window_centers, (query.shape[0], query.shape[1]))
    if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
        raise ValueError(f"`window` must be a positive number with `window_centers`. Received: window={window!r}")
    return ops.cast(window_centers, "float32"), ops.convert_to_tensor(window, "float32")


_SCORE_ARGS_DOC = """
    `mask` `(batch, Tq, Tk)`: True = may attend. Local attention (Luong et al., 2015, section 3.2):
    with `window_centers` `(batch, Tq)` (the aligned positions p_t) and `window` D only keys with
    |s - p_t| <= D are attended, and `gaussian=True` multiplies the weights by
    exp(-(s - p_t)² / (2(D/2)²)) (they then no longer sum to 1, as in the paper).
    `dropout_multiplier` (see `dropout_multiplier`) scales the weights used for the context.
    `policy`: the `AttentionPolicy` whose plan says whether the kernel compiles with XLA (default:
    `get_policy()`).
    Returns `(context (batch, Tq, dv), weights (batch, Tq, Tk))`; the softmax runs in float32 and a
    query with no key to attend gets zero weights and a zero context.
"""


def additive_attention(
    query,
    key,
    value,
    attention_v,
    bias=None,
    mask=None,
    window_centers=None,
    window=None,
    gaussian=False,
    dropout_multiplier=None,
    *,
    policy=None,
):
    """Additive attention over projected queries `(batch, Tq, U)` and keys `(batch, Tk, U)`:
    weights = softmax(vᵀ tanh(q + k + b)) (`attention_v`, `bias`: `(U,)`), context = weights · value.

    Example (projected queries and keys with U = 2; the second key is masked out):
    >>> query, key = tf.ones((1, 1, 2)), tf.constant([[[1.0, 0.0], [0.0, 1.0]]])
    >>> value = tf.constant([[[10.0], [20.0]]])
    >>> context, weights = ksa.ops.additive_attention(query, key, value, tf.ones((2,)),
    ...                                                mask=tf.constant([[[True, False]]]))
    >>> weights.numpy().tolist(), context.numpy().tolist()
    ([[[1.0, 0.0]]], [[[10.0]]])
    """
    centers, window = _local_window(query, key, value, mask, window_centers, window, gaussian)
    return _additive_kernel(
        query,
        key,
        value,
        attention_v,
        bias,
        mask,
        centers,
        window,
        dropout_multiplier,
        xla=(policy or get_policy()).plan().xla,
        gaussian=bool(gaussian),
    )


def dot_attention(
    query,
    key,
    value,
    scale=None,
    mask=None,
    window_centers=None,
    window=None,
    gaussian=False,
    dropout_multiplier=None,
    *,
    policy=None,
):
    """Dot-score attention: weights = softmax(scale · qᵀk), context = weights · value, for
    `query` `(batch, Tq, d)`, `key` `(batch, Tk, d)`, `value` `(batch, Tk, dv)`.

    Example (two keys; the query is closer to the second):
    >>> query, key = tf.constant([[[0.0, 1.0]]]), tf.constant([[[1.0, 0.0], [0.0, 1.0]]])
    >>> value = tf.constant([[[10.0], [20.0]]])
    >>> context, weights = ksa.ops.dot_attention(query, key, value)
    >>> weights.numpy().astype(float).round(3).tolist(), context.numpy().astype(float).round(2).tolist()
    ([[[0.269, 0.731]]], [[[17.31]]])
    """
    centers, window = _local_window(query, key, value, mask, window_centers, window, gaussian)
    return _dot_kernel(
        query,
        key,
        value,
        scale,
        mask,
        centers,
        window,
        dropout_multiplier,
        xla=(policy or get_policy()).plan().xla,
        gaussian=bool(gaussian),
    )


additive_attention.__doc__ += _SCORE_ARGS_DOC
dot_attention.__doc__ += _SCORE_ARGS_DOC
