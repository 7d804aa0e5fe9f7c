"""All the mask logic in one place.

Masks are boolean and True means "may attend". Shapes: padding masks `(batch, S)` (or `(batch, T)`
for queries), attention masks `(batch, T, S)`, causal masks `(T, S)`. Masks of different kinds
combine with AND; an explicit mask passed to a layer overrides the implicit Keras mask of the same
input (Keras only fills a `*_mask` argument that the caller left as None).
"""

from keras import ops
from keras.src.backend import get_keras_mask  # as keras-hub reads it; Keras has no public name for it

# What a masked score becomes before a softmax: finite, so that a row with every key masked stays
# finite (its weights are then zeroed) where -inf would give NaN.
LOWEST_SCORE = -3.0e38


def padding_mask(lengths, max_length):
    """`(batch, max_length)`: True at positions `< lengths[b]`.

    Example:
    >>> ksa.ops.padding_mask([1, 3], 4).numpy().tolist()
    [[True, False, False, False], [True, True, True, False]]
    """
    positions = ops.arange(max_length, dtype="int32")
    return ops.less(positions[None, :], ops.cast(lengths, "int32")[:, None])


def causal_mask(query_length, key_length, offset=0):
    """`(query_length, key_length)`: query i may attend key j when `j <= i + offset`.

    `offset` is the position of the first query among the keys: 0 for a full sequence (the
    lower triangle, as in `keras.layers.MultiHeadAttention`), the cache index while decoding.

    Example (two new queries after two cached keys: offset 2):
    >>> ksa.ops.causal_mask(2, 4, offset=2).numpy().astype(int).tolist()
    [[1, 1, 1, 0], [1, 1, 1, 1]]
    """
    rows = ops.arange(query_length, dtype="int32")[:, None] + ops.cast(offset, "int32")
    cols = ops.arange(key_length, dtype="int32")[None, :]
    return ops.less_equal(cols, rows)


def local_window_mask(centers, key_length, window):
    """`(..., key_length)` from `centers` `(...)`: key j is in the window when |j - center| <= window.

    Luong et al. (2015) local attention: the window `[p_t - D, p_t + D]` around a (possibly
    fractional) aligned position `p_t`.

    Example:
    >>> ksa.ops.local_window_mask(tf.constant([2.0]), 5, 1).numpy().tolist()
    [[False, True, True, True, False]]
    """
    positions = ops.cast(ops.arange(key_length), "float32")
    distance = ops.abs(positions - ops.cast(centers, "float32")[..., None])
    return ops.less_equal(distance, ops.cast(window, "float32"))


def combine_masks(*masks):
    """AND of the masks that are not None (broadcasting), or None when all are None.

    Example:
    >>> ksa.ops.combine_masks(tf.constant([True, True]), None, tf.constant([True, False])).numpy().tolist()
    [True, False]
    >>> ksa.ops.combine_masks(None, None) is None
    True
    """
    present = [ops.cast(m, "bool") for m in masks if m is not None]
    if not present:
        return None
    combined = present[0]
    for mask in present[1:]:
        combined = ops.logical_and(combined, mask)
    return combined


def implicit_mask(tensor):
    """The Keras mask attached to `tensor` (e.g. by `Embedding(mask_zero=True)`), or None."""
    return get_keras_mask(tensor)


def without_implicit_mask(tensor):
    """`tensor`, or a copy without its Keras mask when it has one: for a layer that has taken the
    mask as an argument, so that its sublayers do not warn that they drop it. The caller's tensor
    is left as it is."""
    return tensor if get_keras_mask(tensor) is None else ops.copy(tensor)


def lift_mask(mask, rank):
    """Insert axes after the batch axis up to `rank`: `(batch, S)` -> `(batch, 1, S)` -> `(batch, 1, 1, S)`."""
    for _ in range(rank - len(mask.shape)):
        mask = ops.expand_dims(mask, 1)
    return mask


def insert_heads_axis(mask):
    """A `(T, S)`, `(batch, T, S)` or `(batch, heads, T, S)` mask as a boolean rank-4 one: the
    missing axes go in front of T, as Keras inserts them."""
    mask = ops.cast(mask, "bool")
    while len(mask.shape) < 4:
        mask = ops.expand_dims(mask, -3)
    return mask


def attention_mask(query_mask=None, value_mask=None, key_mask=None, attention_mask=None, causal=None):
    """Merge padding masks `(batch, T)`/`(batch, S)`, an attention mask `(batch, T, S)` and a causal
    mask `(T, S)` into one `(batch, T, S)` mask (or None when all are None).

    Example (padded keys and causality, as one `(batch, T, S)` mask):
    >>> mask = ksa.ops.attention_mask(value_mask=tf.constant([[True, True, False]]), causal=ksa.ops.causal_mask(3, 3))
    >>> mask.numpy().astype(int).tolist()
    [[[1, 0, 0], [1, 1, 0], [1, 1, 0]]]
    """
    return combine_masks(
        None if query_mask is None else ops.expand_dims(query_mask, -1),
        None if value_mask is None else ops.expand_dims(value_mask, -2),
        None if key_mask is None else ops.expand_dims(key_mask, -2),
        attention_mask,
        None if causal is None else ops.expand_dims(causal, 0),
    )
