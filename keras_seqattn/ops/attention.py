"""Scaled dot-product attention (and the masked softmax and dropout that all attention shares):
the dense kernel, which compiles with XLA where the attention policy's plan says so (`policy.py`,
`xla.py`), and the dispatch to the flash path (`flash/`). The dense kernel runs on every Keras
backend; the flash path on TensorFlow only. The RNN family's attention: `rnn_attention.py`."""

import keras
import tensorflow as tf
from keras import ops

from keras_seqattn import checks, deprecation
from keras_seqattn.ops.flash import flash_attention
from keras_seqattn.ops.masks import LOWEST_SCORE, causal_mask, combine_masks, lift_mask, local_window_mask
from keras_seqattn.ops.policy import get_policy
from keras_seqattn.ops.xla import xla_kernel


def masked_softmax(scores, mask=None, empty_rows=True):
    """Softmax over the last axis, computed in float32.

    Masked entries (mask False) get weight 0, and a row with no key left to attend gets all
    zeros (so its context is zero, never NaN), whatever the compute dtype. `empty_rows=False`
    promises that no row is all False, and saves the pass that zeroes such rows.

    Example (the masked score gets no weight; a row without a key gets none at all):
    >>> scores = tf.constant([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    >>> mask = tf.constant([[True, True, False], [False, False, False]])
    >>> ksa.ops.masked_softmax(scores, mask).numpy().astype(float).round(3).tolist()
    [[0.269, 0.731, 0.0], [0.0, 0.0, 0.0]]
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    weights = ops.softmax(ops.where(mask, scores, LOWEST_SCORE), axis=-1)
    return ops.where(ops.any(mask, axis=-1, keepdims=True), weights, 0.0) if empty_rows else weights


def dropout_multiplier(shape, rate, seed=None):
    """`keep / (1 - rate)` with `keep ~ Bernoulli(1 - rate)`, a float32 tensor of `shape`, drawn
    outside the compiled kernels with Keras's random ops (`seed`: int, SeedGenerator or None).

    Example:
    >>> keep = ksa.ops.dropout_multiplier((2, 1000), rate=0.25, seed=0)
    >>> sorted(set(keep.numpy().ravel().tolist()))  # dropped, or kept and scaled by 1 / (1 - rate)
    [0.0, 1.3333333730697632]
    """
    keep = ops.greater_equal(keras.random.uniform(shape, seed=seed), rate)
    return ops.cast(keep, "float32") / (1.0 - rate)


def _einsum(equation, *operands):
    """`keras.ops.einsum`, but on TensorFlow its own Einsum op: Keras turns these equations into
    transposes around a matmul, ops whose overhead cost about 0.1 ms a call at L = 128 (8%)."""
    if keras.backend.backend() == "tensorflow":
        return tf.einsum(equation, *operands)
    return ops.einsum(equation, *operands)


@xla_kernel
def _dense_kernel(
    query, key, value, mask, multiplier, scale, bias, slopes, offset, *, is_causal, window, return_weights
):
    # query (B, T, H, d); key (B, S, K, d); value (B, S, K, dv); mask (B|1, H|1, T|1, S|1); bias
    # (B|1, H|1, T|1, S|1) float32; slopes (H,); offset: the position of query 0 among the keys.
    # Query head h reads key/value head h // G, G = H / K (grouped-query attention; G = 1 for MHA).
    batch, q_len, heads, depth = ops.shape(query)
    k_len, kv_heads = ops.shape(key)[1], ops.shape(key)[2]
    groups = heads // kv_heads
    offset = 0 if offset is None else offset
    if scale is None:
        scale = 1.0 / ops.sqrt(ops.cast(depth, "float32"))
    query = query * ops.cast(scale, query.dtype)
    # One op fewer each way than the grouped form, when the head counts are known to be equal.
    one_group = query.shape[2] is not None and query.shape[2] == key.shape[2]
    if one_group:
        scores = _einsum("bthd,bshd->bhts", query, key)
    else:
        query = ops.reshape(query, (batch, q_len, kv_heads, groups, depth))
        scores = ops.reshape(_einsum("btkgd,bskd->bkgts", query, key), (batch, heads, q_len, k_len))
    if bias is not None or slopes is not None:
        scores = ops.cast(scores, "float32")
        if bias is not None:
            scores = scores + bias
        if slopes is not None:  # ALiBi: slope_h · (j - i), key position minus query position
            distance = ops.arange(k_len)[None, :] - (ops.arange(q_len)[:, None] + ops.cast(offset, "int32"))
            scores = scores + slopes[None, :, None, None] * ops.cast(distance, "float32")[None, None]
    empty_rows = mask is not None or window is not None  # causality alone leaves every query its first key
    if is_causal:
        mask = combine_masks(mask, causal_mask(q_len, k_len, offset)[None, None])
    if window is not None:  # |j - i| < window
        centers = ops.arange(q_len, dtype="float32") + ops.cast(offset, "float32")
        mask = combine_masks(mask, local_window_mask(centers, k_len, window - 1)[None, None])
    weights = masked_softmax(scores, mask, empty_rows)  # (B, H, T, S) float32
    used = weights if multiplier is None else weights * multiplier
    used = ops.cast(used, value.dtype)
    if one_group:
        output = _einsum("bhts,bshd->bthd", used, value)
    else:
        used = ops.reshape(used, (batch, kv_heads, groups, q_len, k_len))
        output = _einsum("bkgts,bskd->btkgd", used, value)
        output = ops.reshape(output, (batch, q_len, heads, ops.shape(value)[-1]))
    if not return_weights:
        return output
    return output, ops.cast(weights, value.dtype)


def _flash(
    query,
    key,
    value,
    mask,
    scale,
    bias,
    slopes,
    offset,
    *,
    is_causal,
    mask_per_query,
    mask_per_key,
    blocks,
    parallel,
    window,
    bias_axes,
):
    if scale is None:
        scale = 1.0 / ops.sqrt(ops.cast(ops.shape(query)[-1], "float32"))
    return flash_attention(
        query,
        key,
        value,
        mask,
        scale,
        is_causal,
        mask_per_query,
        mask_per_key,
        *blocks,
        parallel_iterations=parallel,
        window=window,
        offset=offset,
        bias=bias,
        bias_axes=bias_axes,
        alibi_slopes=slopes,
    )


_flash_kernel = xla_kernel(_flash)


def _tile_mask(mask, query, key):
    """The `(B|1, H|1, T|1, S|1)` mask for the flash path, and whether its query and key axes are
    T and S (the tiles slice them) or 1 (broadcast). An axis whose size is not known when traced
    is broadcast to T or S, since the tiles need to know which it is."""
    if mask is None:
        return None, False, False
    for axis, length in ((2, ops.shape(query)[1]), (3, ops.shape(key)[1])):
        if mask.shape[axis] is None:
            shape = list(ops.shape(mask))
            shape[axis] = length
            mask = ops.broadcast_to(mask, shape)
    return mask, mask.shape[2] != 1, mask.shape[3] != 1


@deprecation.legacy_arguments(
    positional=(
        "mask",
        "is_causal",
        "scale",
        "dropout_rate",
        "training",
        "seed",
        "return_attention_scores",
        "flash",
        "policy",
        "bias",
        "alibi_slopes",
        "window",
        "query_offset",
    ),
    renamed={"flash": "flash_attention"},
)
def scaled_dot_product_attention(
    query,
    key,
    value,
    *,
    mask=None,
    is_causal=False,
    scale=None,
    dropout_rate=0.0,
    training=False,
    seed=None,
    return_attention_scores=False,
    flash_attention=None,
    policy=None,
    bias=None,
    alibi_slopes=None,
    window=None,
    query_offset=None,
):
    """Scaled dot-product attention, softmax(Q Kᵀ · scale) V (Vaswani et al., 2017, eq. 1).

    Args:
        query: `(batch, T, heads, d)`, or `(batch, T, d)` for a single head.
        key: `(batch, S, kv_heads, d)` (or `(batch, S, d)`); `heads` must be a multiple of
            `kv_heads` (grouped-query attention: query head h reads key head h // (heads/kv_heads)).
        value: `(batch, S, kv_heads, dv)` (or `(batch, S, dv)`).
        mask: boolean, True = may attend: `(batch, S)` padding, `(batch, T, S)` or, for 4-D
            inputs, `(batch, heads, T, S)`; size-1 axes broadcast.
        is_causal: also mask key j > query i (the lower triangle, as Keras).
        scale: multiplies the scores; default `1/sqrt(d)`.
        dropout_rate: dropout on the attention weights while training.
        training: whether dropout applies.
        seed: of the dropout: int, `keras.random.SeedGenerator` or None.
        return_attention_scores: also return the weights `(batch, heads, T, S)` (`(batch, T, S)`
            for 3-D inputs).
        flash_attention: which path computes it (keras's argument). None (default): as the
            policy's plan says (`AttentionPolicy.plan`): the flash path (`ops/flash/`: no T x S
            matrix in the forward or backward pass) when T and S are known when traced, T·S ≥
            the policy's `flash_min_scores`, no weights or dropout are needed, and, while
            training without causality, the dense path's score matrices would not fit the
            policy's `training_budget`. True forces it (TensorFlow only; not with
            `return_attention_scores` or training dropout); False forces the dense path. Both
            give the same outputs and gradients to 1e-5. (`flash=`: the deprecated spelling.)
        policy: the `AttentionPolicy` that plans the call (path, tiles, XLA); default
            `get_policy()`, read here once.
        bias: an additive float bias of the scaled scores, `(batch|1, heads|1, T, S)` (or `(T,
            S)`; size-1 axes broadcast), for T5-style relative positions and the like; it gets a
            gradient on both paths. The flash path reads it tile by tile (the bias itself is
            the caller's T x S tensor).
        alibi_slopes: ALiBi (Press et al., 2022): `(heads,)` slopes m_h, adding m_h · (j - i) to
            the score of query i and key j; the flash path computes it per tile, so no T x S
            bias exists.
        window: an int w: query i attends keys j with |i - j| < w (with `is_causal`, the w keys
            up to i: sliding-window attention); the flash path never visits tiles outside the
            band, so its cost grows as T · w.
        query_offset: the position of the first query among the keys (int or scalar tensor, for
            cached decoding), used by causality, the window and ALiBi; default 0.

    A query with no key left to attend gets a zero output (never NaN); the softmax runs in float32.
    Returns `(batch, T, heads, dv)` (or `(batch, T, dv)`), and the weights when asked.

    Every argument after `value` is keyword-only.

    Example (`(batch, T, heads, depth)` inputs, as keras.ops.dot_product_attention takes them):
    >>> q, k, v = (keras.random.normal((2, 6, 4, 8), seed=i) for i in range(3))
    >>> out = ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=True)
    >>> out.shape
    TensorShape([2, 6, 4, 8])
    >>> reference = keras.ops.dot_product_attention(q, k, v, is_causal=True)
    >>> bool(np.allclose(out, reference, atol=1e-5))
    True
    >>> tiled = ksa.ops.scaled_dot_product_attention(q, k, v, is_causal=True, window=2,
    ...                                                  flash_attention=True)
    >>> bool(np.allclose(tiled[:, :2], out[:, :2], atol=1e-5))  # the first 2 queries see at most 2 keys
    True
    """
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        checks.check_rank(name, tensor, (3, 4))
    if not len(query.shape) == len(key.shape) == len(value.shape):
        raise ValueError(
            "`query`, `key` and `value` must have the same rank. Received: "
            f"query.shape={tuple(query.shape)}, key.shape={tuple(key.shape)}, "
            f"value.shape={tuple(value.shape)}"
        )
    checks.check_rate("dropout_rate", dropout_rate)
    checks.check_flash_attention(flash_attention)
    one_head = len(query.shape) == 3
    if one_head:
        query, key, value = (ops.expand_dims(x, 2) for x in (query, key, value))
    batch, q_len, heads, depth = query.shape
    checks.check_dims_match("query", batch, "key", key.shape[0], "batch size")
    checks.check_dims_match("query", batch, "value", value.shape[0], "batch size")
    checks.check_dims_match("key", key.shape[1], "value", value.shape[1], "sequence length")
    checks.check_dims_match("key", key.shape[2], "value", value.shape[2], "number of heads")
    checks.check_dims_match("query", depth, "key", key.shape[3], "depth")
    kv_heads = key.shape[2]
    if heads is not None and kv_heads is not None and heads % kv_heads:
        raise ValueError(
            "The number of `query` heads must be a multiple of the number of `key` heads. "
            f"Received: query heads={heads}, key heads={kv_heads}"
        )
    mask = _mask_4d(mask, (batch, heads, q_len, key.shape[1]), one_head)
    checks.check_positive_int("window", window, allow_none=True)
    bias = _bias_4d(bias, (batch, heads, q_len, key.shape[1]), one_head)
    if alibi_slopes is not None:
        alibi_slopes = ops.cast(alibi_slopes, "float32")
        checks.check_mask_shape("alibi_slopes", alibi_slopes, (heads,))
    offset = None if query_offset is None else ops.convert_to_tensor(query_offset, "int32")
    multiplier = None
    if training and dropout_rate > 0:
        shape = (ops.shape(query)[0], ops.shape(query)[2], ops.shape(query)[1], ops.shape(key)[1])
        multiplier = dropout_multiplier(shape, dropout_rate, seed)
    if scale is not None:
        scale = ops.convert_to_tensor(scale, "float32")
    policy = policy or get_policy()
    weights_needed = multiplier is not None or bool(return_attention_scores)
    if flash_attention:
        checks.check_tensorflow_backend("`flash_attention=True`")
        if weights_needed:
            raise ValueError(
                "`flash_attention=True` computes no attention weights: it cannot return them or apply dropout "
                f"to them. Received: flash_attention=True, return_attention_scores={return_attention_scores}, "
                f"dropout while training={multiplier is not None}"
            )
    plan = policy.plan(
        q_len,
        key.shape[1],
        batch=batch,
        heads=heads,
        is_causal=is_causal,
        window=window,
        banded=bias is not None or alibi_slopes is not None or offset is not None,
        training=bool(training),
        dtype=keras.backend.standardize_dtype(query.dtype),
        flash_attention=flash_attention,
        weights_needed=weights_needed,
        backend=keras.backend.backend(),
    )
    if plan.flash_attention:
        mask, per_query, per_key = _tile_mask(mask, query, key)
        bias, bias_axes = _tile_bias(bias, query, key)
        output = _flash_kernel(
            query,
            key,
            value,
            mask,
            scale,
            bias,
            alibi_slopes,
            offset,
            xla=plan.xla,
            is_causal=bool(is_causal),
            mask_per_query=per_query,
            mask_per_key=per_key,
            blocks=plan.blocks,
            parallel=plan.parallel_iterations,
            window=window,
            bias_axes=bias_axes,
        )
        return ops.squeeze(output, 2) if one_head else output
    result = _dense_kernel(
        query,
        key,
        value,
        mask,
        multiplier,
        scale,
        bias,
        alibi_slopes,
        offset,
        xla=plan.xla,
        is_causal=bool(is_causal),
        window=window,
        return_weights=bool(return_attention_scores),
    )
    if not return_attention_scores:
        return ops.squeeze(result, 2) if one_head else result
    output, weights = result
    if one_head:
        return ops.squeeze(output, 2), ops.squeeze(weights, 1)
    return output, weights


def _bias_4d(bias, expected, one_head):
    """A `(batch|1, heads|1, T, S)` or `(T, S)` bias (for 3-D inputs `(batch|1, T, S)` too) as a
    rank-4 float32 tensor, checked."""
    if bias is None:
        return None
    ranks = (2, 3) if one_head else (2, 4)
    checks.check_rank("bias", bias, ranks)
    bias = ops.cast(bias, "float32")
    if len(bias.shape) == 2:
        bias = bias[None, None]
    elif len(bias.shape) == 3:
        bias = ops.expand_dims(bias, 1)
    checks.check_mask_shape("bias", bias, expected)
    return bias


def _tile_bias(bias, query, key):
    """The bias for the flash path, with which of its axes are full (the tiles slice them)
    rather than 1; an axis unknown when traced is broadcast to its full size."""
    if bias is None:
        return None, (True, True, True, True)
    sizes = (ops.shape(query)[0], ops.shape(query)[2], ops.shape(query)[1], ops.shape(key)[1])
    for axis, length in enumerate(sizes):
        if bias.shape[axis] is None:
            shape = list(ops.shape(bias))
            shape[axis] = length
            bias = ops.broadcast_to(bias, shape)
    return bias, tuple(size != 1 for size in bias.shape)


def _mask_4d(mask, expected, one_head):
    """A `(batch, S)`, `(batch, T, S)` or `(batch, heads, T, S)` mask as `(B|1, H|1, T|1, S)`."""
    if mask is None:
        return None
    checks.check_attention_mask("mask", mask, expected, one_head)
    return lift_mask(ops.cast(mask, "bool"), 4)
