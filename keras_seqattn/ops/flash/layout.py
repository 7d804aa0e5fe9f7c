"""The block layout the flash kernels share (a sequence cut into zero-padded blocks, and put
back together) and their matrix products in the inputs' precision. TensorFlow only."""

import tensorflow as tf


def product(equation, a, b):
    """`tf.einsum(equation, a, b)` in the precision of the attention's inputs (the lower of the
    two operands' dtypes: the float32 operand is cast down), returned in float32."""
    compute = a.dtype if a.dtype != tf.float32 else b.dtype
    return tf.cast(tf.einsum(equation, tf.cast(a, compute), tf.cast(b, compute)), tf.float32)


def block_count(length, block):
    """How many blocks of `block` cover `length`."""
    return (length + block - 1) // block


def blocks(x, block, blocks):
    """(B, H, L, ...) -> (B, H, blocks, block, ...), zero-padded to blocks * block along L."""
    rank = len(x.shape)
    x = tf.pad(x, [[0, 0], [0, 0], [0, blocks * block - tf.shape(x)[2]]] + [[0, 0]] * (rank - 3))
    return tf.reshape(x, tf.concat([tf.shape(x)[:2], [blocks, block], tf.shape(x)[3:]], 0))


def unblock(x, length):
    """(n, B, H, block, ...) -> (B, H, length, ...): blocks stacked first (by a loop) back into
    one sequence, cut to `length`."""
    rank = len(x.shape)
    x = tf.transpose(x, [1, 2, 0] + list(range(3, rank)))
    x = tf.reshape(x, tf.concat([tf.shape(x)[:2], [-1], tf.shape(x)[4:]], 0))
    return x[:, :, :length]
