"""Exact attention without the T x S matrix: blocked online softmax (FlashAttention, Dao et al.,
2022; Rabe & Staats, 2021), written with TensorFlow loops for XLA.

Queries are cut into blocks of `query_block` rows and keys into blocks of `key_block` columns. For
each query block, a loop over key blocks keeps a running row maximum m, a running sum l of
exp(s - m) and a running unnormalised output o; each new tile rescales them by exp(m_old - m_new).
Only a `query_block x key_block` tile of scores exists at any time. With `is_causal`, key blocks
entirely above the diagonal are never visited (the loop stops at the diagonal), and masks (padding,
per-query, per-head) are applied per tile. The gradient recomputes the tiles from the saved
log-sum-exp (one loop over key blocks, an inner loop over the query blocks that see them), so
training memory is O(T · block) too. The matrix products run in the input precision (bfloat16 or
float16 inputs stay so; oneDNN and GPUs accumulate them in float32), everything else in float32:
scores once computed, the softmax and its statistics (running max, sum, log-sum-exp), the output
and gradient accumulators, as FlashAttention does.

Whole rows (`key_block=None`, rows.py): while a block of queries times all S keys is small, each query
block's scores over every key get an exact softmax in one step (TensorFlow's fused softmax
kernel), with no running maximum to rescale, and the gradient recomputes them the same way. With
causality (`key_block="causal_rows"`), query block i takes only the keys up to its last row, so
the work above the diagonal is skipped as the online tiles skip it; its key length changes from
block to block, which XLA cannot compile: inside an XLA context the online tiles run instead.
Memory stays O(query_block · S).

This is the TensorFlow path of `scaled_dot_product_attention` (ops/attention.py), which runs it
with the tiles of the attention policy's plan (ops/policy.py).
"""

import functools

import tensorflow as tf
from tensorflow.python.ops import control_flow_util  # whether a graph is being compiled by XLA

from keras_seqattn.ops.flash.layout import block_count, blocks, product, unblock
from keras_seqattn.ops.flash.rows import RowBlocks, rows_backward, rows_forward
from keras_seqattn.ops.policy import CAUSAL_ROWS, WHOLE_ROWS


def in_xla_context():
    """Whether the ops being built now will be compiled by XLA (inside `jit_compile=True`)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def flash_attention(
    query,
    key,
    value,
    mask,
    scale,
    is_causal,
    mask_per_query,
    mask_per_key,
    query_block,
    key_block,
    parallel_iterations=2,
    window=None,
    offset=None,
    bias=None,
    bias_axes=(True, True, True, True),
    alibi_slopes=None,
):
    """query (B, T, H, d), key (B, S, K, d), value (B, S, K, dv), mask (B|1, H|1, T|1, S|1) bool or
    None (`mask_per_query` / `mask_per_key`: its third / fourth axis is T / S, not 1), scale a
    float32 scalar -> (B, T, H, dv). Query row r sits at position r + `offset` (a scalar tensor,
    default 0) among the keys. Causal masks key j > that position; `window` w masks keys more than
    w - 1 positions away from it. `bias` (B|1, H|1, T|1, S|1), float32, is added to the scaled
    scores (`bias_axes`: which of its four axes are full rather than 1), and `alibi_slopes` (H,) adds
    slope_h · (j - position) per tile. `key_block=None` tiles whole rows, `"causal_rows"` causal
    rows (the policy plans neither with a window, an offset, a bias or ALiBi).
    `parallel_iterations`: tiles a loop may run at once outside XLA."""
    dtype = query.dtype
    heads, kv_heads = tf.shape(query)[2], tf.shape(key)[2]
    key, value = (tf.repeat(x, heads // kv_heads, axis=2) for x in (key, value))
    # (B, H, T, d) layout, queries pre-scaled.
    compute = dtype if dtype in (tf.bfloat16, tf.float16) else tf.float32  # the products' precision
    query, key, value = (tf.transpose(tf.cast(x, compute), [0, 2, 1, 3]) for x in (query, key, value))
    query = query * tf.cast(scale, compute)
    if key_block == CAUSAL_ROWS and in_xla_context():  # XLA cannot compile varying key lengths
        key_block = query_block
    if key_block in (WHOLE_ROWS, CAUSAL_ROWS):
        rows = RowBlocks(
            tf.shape(query)[2],
            tf.shape(key)[2],
            query_block,
            mask,
            mask_per_query,
            key_block is not None,
            parallel_iterations,
        )
        attend = _differentiable(functools.partial(rows_forward, rows), functools.partial(rows_backward, rows))
        output = attend(query, key, value)
    else:
        tiles = _Tiles(
            tf.shape(query)[2],
            tf.shape(key)[2],
            query_block,
            key_block,
            is_causal,
            mask,
            mask_per_query,
            mask_per_key,
            parallel_iterations,
            window,
            tf.zeros([], tf.int32) if offset is None else tf.cast(offset, tf.int32),
            bias,
            bias_axes,
            alibi_slopes,
        )
        attend = _differentiable(functools.partial(_forward, tiles), functools.partial(_backward, tiles))
        output = attend(query, key, value, *([] if bias is None else [tf.cast(bias, tf.float32)]))
    return tf.cast(tf.transpose(output, [0, 2, 1, 3]), dtype)


class _Tiles:
    """The block geometry shared by the forward and backward loops: which tiles a query block or
    a key block meets (the band of causality and the window), and each tile's scores (bias,
    ALiBi) and mask."""

    def __init__(
        self,
        q_len,
        k_len,
        query_block,
        key_block,
        is_causal,
        mask,
        mask_per_query,
        mask_per_key,
        parallel,
        window,
        offset,
        bias,
        bias_axes,
        alibi_slopes,
    ):
        self.q_len, self.k_len, self.parallel = q_len, k_len, parallel
        self.qb, self.kb, self.is_causal, self.window, self.offset = query_block, key_block, is_causal, window, offset
        self.nq, self.nk = block_count(q_len, query_block), block_count(k_len, key_block)
        self.mask, self.mask_per_query, self.mask_per_key = mask, mask_per_query, mask_per_key
        if mask is not None:  # (B|1, H|1, nq|1, qb|1, nk|1, kb|1), padding masked
            self.mask = self.tile_layout(mask, mask_per_query, mask_per_key)
        self.has_bias, self.bias_axes = bias is not None, tuple(bias_axes)
        self.bias_per_query, self.bias_per_key = self.bias_axes[2:]
        self.alibi = None if alibi_slopes is None else tf.cast(alibi_slopes, tf.float32)[None, :, None, None]

    def tile_layout(self, x, per_query, per_key):
        """(B|1, H|1, T|1, S|1) -> (B|1, H|1, nq|1, qb|1, nk|1, kb|1), zero-padded."""
        if per_key:
            x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.nk * self.kb - self.k_len]])
            x = tf.reshape(x, tf.concat([tf.shape(x)[:3], [self.nk, self.kb]], 0))
        else:  # one value for every key of a row
            x = x[..., None]
        return self.query_blocks(x) if per_query else x[:, :, None]

    def query_blocks(self, x):  # (B, H, T, ...) -> (B, H, nq, qb, ...), zero-padded
        return blocks(x, self.qb, self.nq)

    def key_blocks(self, x):  # (B, H, S, d) -> (B, H, nk, kb, d), zero-padded
        return blocks(x, self.kb, self.nk)

    def key_range(self, i):
        """Query block i meets key blocks [start, end): none past the diagonal with causality,
        none beyond the window."""
        first = i * self.qb + self.offset  # the positions of its first and last rows
        last = first + self.qb - 1
        start, end = 0, self.nk
        if self.is_causal:
            end = tf.clip_by_value(last // self.kb + 1, 0, self.nk)
        if self.window is not None:
            start = tf.maximum(0, (first - (self.window - 1)) // self.kb)
            if not self.is_causal:
                end = tf.clip_by_value((last + self.window - 1) // self.kb + 1, 0, self.nk)
        return start, end

    def query_range(self, j):
        """Key block j is met by query blocks [start, end)."""
        first, last = j * self.kb, j * self.kb + self.kb - 1  # its keys
        start, end = 0, self.nq
        if self.is_causal:
            start = tf.maximum(0, (first - self.offset) // self.qb)
        if self.window is not None:
            low = first - (self.window - 1) if not self.is_causal else first
            start = tf.maximum(0, (low - self.offset) // self.qb)
            end = tf.clip_by_value((last + self.window - 1 - self.offset) // self.qb + 1, 0, self.nq)
        return start, end

    def _positions(self, i, j):
        rows = i * self.qb + tf.range(self.qb)[:, None] + self.offset
        cols = j * self.kb + tf.range(self.kb)[None, :]
        return rows, cols

    def allowed(self, i, j):
        """The (B|1, H|1, qb, kb) boolean mask of tile (i, j)."""
        rows, cols = self._positions(i, j)
        allowed = cols < self.k_len
        if self.is_causal:
            allowed &= cols <= rows
        if self.window is not None:
            allowed &= tf.abs(cols - rows) <= self.window - 1
        allowed = allowed[None, None]
        if self.mask is not None:
            allowed &= self.tile_of(self.mask, i, j, self.mask_per_query, self.mask_per_key)
        return allowed

    @staticmethod
    def tile_of(x, i, j, per_query, per_key):
        """Tile (i, j) of a `tile_layout` tensor: (B|1, H|1, qb|1, kb|1)."""
        x = tf.gather(x, i, axis=2) if per_query else x[:, :, 0]
        return tf.gather(x, j, axis=3) if per_key else x[:, :, :, 0]

    def scores(self, i, j, scores, bias):
        """The scores of tile (i, j) plus its bias and ALiBi (`bias` in `tile_layout`, or None)."""
        if bias is not None:
            scores += self.tile_of(bias, i, j, self.bias_per_query, self.bias_per_key)
        if self.alibi is not None:
            rows, cols = self._positions(i, j)
            scores += self.alibi * tf.cast(cols - rows, tf.float32)[None, None]
        return scores

    def masked(self, i, j, tile, fill):
        """`tile` (B, H, qb, kb) with `fill` where tile (i, j) may not attend. Tiles that no mask,
        no padding, no diagonal and no window edge cross (most of them) skip the select."""
        if self.mask is not None:
            return tf.where(self.allowed(i, j), tile, fill)
        first, last = i * self.qb + self.offset, i * self.qb + self.offset + self.qb - 1
        inside = (j + 1) * self.kb <= self.k_len
        if self.is_causal:
            inside &= (j + 1) * self.kb - 1 <= first
        if self.window is not None:
            inside &= ((j + 1) * self.kb - 1 - first <= self.window - 1) & (last - j * self.kb <= self.window - 1)
        return tf.cond(inside, lambda: tile, lambda: tf.where(self.allowed(i, j), tile, fill))


def _differentiable(forward, backward):
    """`forward(query, key, value[, bias])` -> `(output, *saved)`, with the gradient
    `backward(query, key, value[, bias], output, *saved, d_output)` -> the inputs' gradients."""

    @tf.custom_gradient
    def attend(*inputs):
        # Run eagerly, a tape would record (and keep alive) every tile: the loops see constants.
        inputs = tuple(tf.stop_gradient(x) for x in inputs)
        results = forward(*inputs)

        def gradient(d_output):
            grads = backward(*inputs, *results, tf.cast(d_output, tf.float32))
            return tuple(tf.cast(g, x.dtype) for g, x in zip(grads, inputs))

        return results[0], gradient

    return attend


def _forward(tiles, query, key, value, bias=None):
    """Outputs (B, H, T, dv) and row log-sum-exps (B, H, T) (+inf where nothing is attended)."""
    queries, keys, values = tiles.query_blocks(query), tiles.key_blocks(key), tiles.key_blocks(value)
    if bias is not None:
        bias = tiles.tile_layout(bias, tiles.bias_per_query, tiles.bias_per_key)

    def query_block(i):
        q = tf.gather(queries, i, axis=2)  # (B, H, qb, d)
        rows = tf.shape(q)[:3]
        start = (0, tf.fill(rows, -float("inf")), tf.zeros(rows), tf.zeros(tf.concat([rows, tf.shape(values)[-1:]], 0)))

        def key_block(j, m, total, out):
            scores = tiles.scores(i, j, product("bhqd,bhkd->bhqk", q, tf.gather(keys, j, axis=2)), bias)
            scores = tiles.masked(i, j, scores, -float("inf"))
            m_new = tf.maximum(m, tf.reduce_max(scores, axis=-1))
            shift = tf.where(tf.math.is_inf(m_new), 0.0, m_new)  # rows with nothing yet
            p = tf.exp(scores - shift[..., None])
            rescale = tf.exp(m - shift)
            new_out = out * rescale[..., None] + product("bhqk,bhkd->bhqd", p, tf.gather(values, j, axis=2))
            new_total = total * rescale + tf.reduce_sum(p, axis=-1)
            # The loop keeps the shapes it started with (a block of one row is known statically).
            return (
                j + 1,
                tf.ensure_shape(m_new, m.shape),
                tf.ensure_shape(new_total, total.shape),
                tf.ensure_shape(new_out, out.shape),
            )

        first, end = tiles.key_range(i)
        _, m, total, out = tf.while_loop(
            lambda j, *_: j < end, key_block, (first, *start[1:]), parallel_iterations=tiles.parallel
        )
        attended = total > 0
        out = out / tf.where(attended, total, 1.0)[..., None]  # empty rows: 0
        return out, tf.where(attended, m + tf.math.log(tf.where(attended, total, 1.0)), float("inf"))

    out, log_sum = tf.map_fn(
        query_block,
        tf.range(tiles.nq),
        fn_output_signature=(tf.float32, tf.float32),
        parallel_iterations=tiles.parallel,
    )
    return unblock(out, tiles.q_len), unblock(log_sum, tiles.q_len)


def _backward(tiles, query, key, value, *rest):
    """Gradients of (query, key, value[, bias]), tile by tile: P = exp(S - lse), dV = Pᵀ dO,
    dS = P ∘ (dO Vᵀ - rowsum(dO ∘ O)), dQ = dS K, dK = dSᵀ Q, dBias = dS."""
    bias, (output, log_sum, d_output) = (rest[0], rest[1:]) if tiles.has_bias else (None, rest)
    queries, keys, values = tiles.query_blocks(query), tiles.key_blocks(key), tiles.key_blocks(value)
    d_outputs = tiles.query_blocks(d_output)
    log_sums = tiles.query_blocks(log_sum)
    deltas = tiles.query_blocks(tf.reduce_sum(d_output * output, axis=-1))  # (B, H, nq, qb)
    tiled_bias = None if bias is None else tiles.tile_layout(bias, tiles.bias_per_query, tiles.bias_per_key)

    def key_block(j, d_queries, d_keys, d_values, d_bias):
        k, v = tf.gather(keys, j, axis=2), tf.gather(values, j, axis=2)  # (B, H, kb, d)

        def query_block(i, d_queries, d_k, d_v, d_bias):
            q, d_out = tf.gather(queries, i, axis=2), tf.gather(d_outputs, i, axis=2)
            scores = tiles.scores(i, j, product("bhqd,bhkd->bhqk", q, k), tiled_bias)
            p = tf.exp(scores - tf.gather(log_sums, i, axis=2)[..., None])
            p = tiles.masked(i, j, p, 0.0)
            d_v += product("bhqk,bhqd->bhkd", p, d_out)
            d_p = product("bhqd,bhkd->bhqk", d_out, v)
            d_s = p * (d_p - tf.gather(deltas, i, axis=2)[..., None])
            d_q = product("bhqk,bhkd->bhqd", d_s, k)
            d_queries = tf.tensor_scatter_nd_add(d_queries, [[i]], d_q[None])
            if bias is not None:  # summed over the axes the bias broadcasts along
                d_tile = _reduce_to(d_s, tiles.bias_axes)
                at = [[i if tiles.bias_per_query else 0, j if tiles.bias_per_key else 0]]
                d_bias = tf.tensor_scatter_nd_add(d_bias, at, d_tile[None])
            return i + 1, d_queries, d_k + product("bhqk,bhqd->bhkd", d_s, q), d_v, d_bias

        first, end = tiles.query_range(j)
        start = (first, d_queries, tf.zeros_like(k, tf.float32), tf.zeros_like(v, tf.float32), d_bias)
        _, d_queries, d_k, d_v, d_bias = tf.while_loop(
            lambda i, *_: i < end, query_block, start, parallel_iterations=tiles.parallel
        )
        d_keys = tf.tensor_scatter_nd_update(d_keys, [[j]], d_k[None])
        d_values = tf.tensor_scatter_nd_update(d_values, [[j]], d_v[None])
        return j + 1, d_queries, d_keys, d_values, d_bias

    block_major = [2, 0, 1, 3, 4]  # (B, H, n, block, d) -> (n, B, H, block, d)
    d_bias = ()
    if bias is not None:  # (nq|1, nk|1, B|1, H|1, qb|1, kb|1)
        d_bias = tf.zeros(
            tf.concat(
                [
                    [tiles.nq if tiles.bias_per_query else 1, tiles.nk if tiles.bias_per_key else 1],
                    tf.shape(bias)[:2],
                    [tiles.qb if tiles.bias_per_query else 1, tiles.kb if tiles.bias_per_key else 1],
                ],
                0,
            )
        )
    start = (0, *(tf.zeros_like(tf.transpose(x, block_major), tf.float32) for x in (queries, keys, values)), d_bias)
    _, d_queries, d_keys, d_values, d_bias = tf.while_loop(
        lambda j, *_: j < tiles.nk, key_block, start, parallel_iterations=tiles.parallel
    )
    grads = (unblock(d_queries, tiles.q_len), unblock(d_keys, tiles.k_len), unblock(d_values, tiles.k_len))
    if bias is None:
        return grads
    d_bias = tf.transpose(d_bias, [2, 3, 0, 4, 1, 5])  # (B|1, H|1, nq|1, qb|1, nk|1, kb|1)
    shape = tf.shape(d_bias)
    d_bias = tf.reshape(d_bias, tf.stack([shape[0], shape[1], shape[2] * shape[3], shape[4] * shape[5]]))
    return (*grads, d_bias[:, :, : tf.shape(bias)[2], : tf.shape(bias)[3]])


def _reduce_to(tile, bias_axes):
    """A (B, H, qb, kb) tile summed over the axes the bias broadcasts along (`bias_axes`: which
    of its batch, heads, query and key axes are full)."""
    axes = [axis for axis, keep in enumerate(bias_axes) if not keep]
    return tf.reduce_sum(tile, axis=axes, keepdims=True) if axes else tile
