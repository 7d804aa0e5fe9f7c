"""Views of inputs with more than one position axis. Attention over chosen axes of high-rank
inputs, as `keras.layers.MultiHeadAttention`'s `attention_axes`: an input `(batch, d_1, ..., d_n, ...)`
is viewed as `(batch · O, A, ...)`, where A is the product of the attention axes' sizes (flattened
in the order the axes are given) and O the product of the other d axes' sizes, which act as batch
axes. And feature maps `(batch, H, W, C)` as sequences of H·W positions. Runs on every Keras
backend.
"""

import math

from keras import ops


def flatten_feature_map(features, mask=None):
    """A feature map `(batch, H, W, C)` (e.g. a CNN's output) as a sequence `(batch, H·W, C)` of
    its positions, row by row (position i·W + j is row i, column j), and its optional spatial mask
    `(batch, H, W)` (True = may attend) as `(batch, H·W)`. Weights over the positions come back to
    `(..., H, W)` with `ops.reshape(weights, (*weights.shape[:-1], H, W))`.

    Example:
    >>> features, mask = tf.zeros((2, 3, 4, 16)), tf.ones((2, 3, 4), bool)
    >>> flat, flat_mask = ksa.ops.flatten_feature_map(features, mask)
    >>> flat.shape, flat_mask.shape
    (TensorShape([2, 12, 16]), TensorShape([2, 12]))
    """
    shape = ops.shape(features)
    flat = ops.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
    return flat, None if mask is None else ops.reshape(mask, (shape[0], shape[1] * shape[2]))


def normalize_attention_axes(attention_axes, rank):
    """The attention axes of a rank-`rank` input `(batch, d_1, ..., d_n, features)`, as a tuple of
    positive axes: None means every d axis; a negative axis counts from the end (-2 is d_n)."""
    if attention_axes is None:
        return tuple(range(1, rank - 1))
    axes = tuple(axis + rank if axis < 0 else axis for axis in attention_axes)
    if not axes or len(set(axes)) != len(axes) or not all(1 <= axis <= rank - 2 for axis in axes):
        raise ValueError(
            f"`attention_axes` must name distinct axes between the batch axis and the last axis of "
            f"the rank-{rank} inputs (1 to {rank - 2}, or -{rank - 1} to -2). "
            f"Received: attention_axes={attention_axes}"
        )
    return axes


class SequenceView:
    """The `(batch · O, A, ...)` view of tensors whose axes 1..n are the input's d axes."""

    def __init__(self, axes, rank):
        self.axes = axes
        self.others = tuple(axis for axis in range(1, rank - 1) if axis not in axes)
        self.identity = self.others == () and axes == tuple(range(1, rank - 1)) and len(axes) == 1

    def flatten(self, x):
        """`(batch, d_1..d_n, *rest)` -> `(batch · O, A, *rest)`."""
        if self.identity:
            return x
        count = len(self.axes) + len(self.others)
        rest = list(range(count + 1, len(x.shape)))
        x = ops.transpose(x, [0, *self.others, *self.axes, *rest])
        shape = ops.shape(x)
        return ops.reshape(x, (-1, _product(shape[1 + len(self.others) : count + 1]), *shape[count + 1 :]))

    def unflatten(self, x, like):
        """The inverse of `flatten` for `x` `(batch · O, A, *rest)`, with the d axes of `like`."""
        if self.identity:
            return x
        shape = ops.shape(like)
        sizes = [shape[axis] for axis in (0, *self.others, *self.axes)]
        x = ops.reshape(x, (*sizes, *ops.shape(x)[2:]))
        order = [0, *self.others, *self.axes]
        inverse = [order.index(axis) for axis in range(len(order))]
        return ops.transpose(x, inverse + list(range(len(order), len(x.shape))))

    def scores(self, scores, query, key):
        """`(batch · O, heads, Tq, Tk)` -> keras's layout `(batch, o..., heads, q_a..., k_a...)`."""
        if self.identity:
            return scores
        q_shape, k_shape = ops.shape(query), ops.shape(key)
        return ops.reshape(
            scores,
            (
                q_shape[0],
                *[q_shape[a] for a in self.others],
                ops.shape(scores)[1],
                *[q_shape[a] for a in self.axes],
                *[k_shape[a] for a in self.axes],
            ),
        )

    def attention_mask(self, mask, query, key):
        """An attention mask in keras's layout `(batch, o..., [heads,] q_a..., k_a...)` (leading
        axes may be missing and any axis may be 1) as `(batch · O, heads|1, Tq, Tk)`."""
        if self.identity:
            return mask
        attended = len(self.axes)
        full_rank = 2 + len(self.others) + 2 * attended
        while len(mask.shape) < full_rank:  # insert the heads axis first, then leading axes
            mask = ops.expand_dims(mask, -2 * attended - 1)
        q_shape, k_shape = ops.shape(query), ops.shape(key)
        heads = ops.shape(mask)[1 + len(self.others)]
        target = (
            q_shape[0],
            *[q_shape[a] for a in self.others],
            heads,
            *[q_shape[a] for a in self.axes],
            *[k_shape[a] for a in self.axes],
        )
        mask = ops.broadcast_to(mask, target)
        return ops.reshape(mask, (-1, heads, _product(target[-2 * attended : -attended]), _product(target[-attended:])))


def _product(sizes):
    return math.prod(sizes) if all(isinstance(s, int) for s in sizes) else ops.prod(ops.stack(sizes))
