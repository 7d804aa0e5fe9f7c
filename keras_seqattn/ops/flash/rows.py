"""Whole-row tiles of the flash path (see tiles.py): each block of queries against all S keys
(or, with causality, the keys up to its last row) in one exact softmax, forward and backward.
TensorFlow only."""

import tensorflow as tf

from keras_seqattn.ops.flash.layout import block_count, blocks, product, unblock
from keras_seqattn.ops.masks import LOWEST_SCORE


class RowBlocks:
    """Whole-row tiles: query blocks of `query_block` rows, each against all S keys, or with
    `causal` against the keys up to its last row."""

    def __init__(self, q_len, k_len, query_block, mask, mask_per_query, causal, parallel):
        self.q_len, self.k_len, self.qb, self.causal, self.parallel = q_len, k_len, query_block, causal, parallel
        self.nq = block_count(q_len, query_block)
        self.mask, self.mask_per_query, self.attended = mask, mask_per_query, None
        if mask is not None:  # (B|1, H|1, nq|1, qb|1, S|1)
            if not causal:  # rows with no key to attend get zeros, at the output (cheaper than the weights)
                self.attended = tf.cast(tf.reduce_any(mask, axis=-1, keepdims=True), tf.float32)
            self.mask = blocks(mask, query_block, self.nq) if mask_per_query else mask[:, :, None]

    def keys_of(self, i):
        """How many keys query block i sees."""
        return tf.minimum(self.k_len, (i + 1) * self.qb) if self.causal else self.k_len

    def weights(self, i, query, key):
        """The softmax weights (B, H, qb, keys_of(i)) of query block i (`query` (B, H, qb, d),
        `key` its keys); with causality, rows with no key to attend are zero (without, the
        output and its gradient are zeroed by `attended`)."""
        scores = product("bhqd,bhkd->bhqk", query, key)
        allowed = None
        if self.causal:
            allowed = (tf.range(tf.shape(key)[2])[None, :] <= i * self.qb + tf.range(self.qb)[:, None])[None, None]
        if self.mask is not None:
            mask = tf.gather(self.mask, i, axis=2) if self.mask_per_query else self.mask[:, :, 0]
            mask = mask[..., : tf.shape(key)[2]]
            allowed = mask if allowed is None else allowed & mask
        if allowed is None:
            return tf.nn.softmax(scores)
        weights = tf.nn.softmax(tf.where(allowed, scores, LOWEST_SCORE))
        if self.mask is None or not self.causal:  # causality alone leaves every row its first key
            return weights
        return tf.where(tf.reduce_any(allowed, axis=-1, keepdims=True), weights, 0.0)

    def widen(self, x):
        """Key-block gradients `(B, H, keys_of(i), d)` zero-padded to all S keys."""
        if not self.causal:
            return x
        return tf.pad(x, [[0, 0], [0, 0], [0, self.k_len - tf.shape(x)[2]], [0, 0]])


def rows_forward(rows, query, key, value):
    """(outputs (B, H, T, dv),): nothing else to save for the gradient."""
    queries = blocks(query, rows.qb, rows.nq)

    def query_block(i):
        end = rows.keys_of(i)
        p = rows.weights(i, tf.gather(queries, i, axis=2), key[:, :, :end])
        return product("bhqk,bhkd->bhqd", p, value[:, :, :end])

    out = tf.map_fn(query_block, tf.range(rows.nq), fn_output_signature=tf.float32, parallel_iterations=rows.parallel)
    out = unblock(out, rows.q_len)
    return (out if rows.attended is None else out * rows.attended,)


def rows_backward(rows, query, key, value, output, d_output):
    """As `_backward`, with the weights of each query block recomputed by `rows.weights`."""
    if rows.attended is not None:  # rows with no key to attend: their (uniform) weights get no gradient
        d_output *= rows.attended
    queries, d_outputs = blocks(query, rows.qb, rows.nq), blocks(d_output, rows.qb, rows.nq)
    deltas = blocks(tf.reduce_sum(d_output * output, axis=-1), rows.qb, rows.nq)

    def query_block(i, d_queries, d_key, d_value):
        end = rows.keys_of(i)
        q, d_out, k, v = (
            tf.gather(queries, i, axis=2),
            tf.gather(d_outputs, i, axis=2),
            key[:, :, :end],
            value[:, :, :end],
        )
        p = rows.weights(i, q, k)
        d_value += rows.widen(product("bhqk,bhqd->bhkd", p, d_out))
        d_s = p * (product("bhqd,bhkd->bhqk", d_out, v) - tf.gather(deltas, i, axis=2)[..., None])
        d_queries = d_queries.write(i, product("bhqk,bhkd->bhqd", d_s, k))
        return i + 1, d_queries, d_key + rows.widen(product("bhqk,bhqd->bhkd", d_s, q)), d_value

    d_queries = tf.TensorArray(tf.float32, rows.nq, element_shape=[None] * 4)
    start = (0, d_queries, tf.zeros_like(key, tf.float32), tf.zeros_like(value, tf.float32))
    _, d_queries, d_key, d_value = tf.while_loop(
        lambda i, *_: i < rows.nq, query_block, start, parallel_iterations=rows.parallel
    )
    return unblock(d_queries.stack(), rows.q_len), d_key, d_value
