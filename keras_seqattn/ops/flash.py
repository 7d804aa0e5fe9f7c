"""Exact attention without the T x S matrix: blocked online softmax (FlashAttention, Dao et al.,
2022; Rabe & Staats, 2021), written with TensorFlow loops for XLA.

Queries are cut into blocks of `query_block` rows and keys into blocks of `key_block` columns. For
each query block, a loop over key blocks keeps a running row maximum m, a running sum l of
exp(s - m) and a running unnormalised output o; each new tile rescales them by exp(m_old - m_new).
Only a `query_block x key_block` tile of scores exists at any time. With `is_causal`, key blocks
entirely above the diagonal are never visited (the loop stops at the diagonal), and masks (padding,
per-query, per-head) are applied per tile. The gradient recomputes the tiles from the saved
log-sum-exp (one loop over key blocks, an inner loop over the query blocks that see them), so
training memory is O(T · block) too. Everything runs in float32 and is cast back at the end.

Without causality, and while a block of queries times all S keys is small, a tile may instead span
whole rows (`key_block=None`): each query block's scores over every key get an exact softmax in
one step (TensorFlow's fused softmax kernel), with no running maximum to rescale, and the gradient
recomputes them the same way. Memory stays O(query_block · S); on the 2-core CPU, with 256-row
blocks at L = 4096, this ran forward in 0.84x the time of 1024 x 1024 online tiles and
forward+backward in 0.92x.

This is the TensorFlow path of `scaled_dot_product_attention` (ops/attention.py), which picks it.
"""

import functools

import tensorflow as tf

from keras_seqattn.ops.masks import LOWEST_SCORE

# Outside XLA, how many iterations of a loop TensorFlow may run at once, each with its tile's
# temporaries: 2 overlaps the tiles' ops on the 2-core CPU (forward+backward at L = 4096: 0.84x the
# time of 1); TensorFlow's default of 10 let a 2-block encoder's training RSS grow by 2.7 GB
# instead of 1.4 GB.
_PARALLEL = 2


def flash_attention(query, key, value, mask, scale, is_causal, mask_per_query, mask_per_key, query_block,
                    key_block):
    """query (B, T, H, d), key (B, S, K, d), value (B, S, K, dv), mask (B|1, H|1, T|1, S|1) bool or
    None (`mask_per_query` / `mask_per_key`: its third / fourth axis is T / S, not 1), scale a
    float32 scalar -> (B, T, H, dv). Causal masks key j > query i. `key_block=None` tiles whole
    rows (not with causality)."""
    if key_block is None and is_causal:
        raise ValueError("Whole-row tiles (`key_block=None`) take no causal mask: give a `key_block`. "
                         f"Received: key_block=None, is_causal={is_causal}")
    dtype = query.dtype
    heads, kv_heads = tf.shape(query)[2], tf.shape(key)[2]
    key, value = (tf.repeat(x, heads // kv_heads, axis=2) for x in (key, value))
    # (B, H, T, d) layout, float32, queries pre-scaled.
    query, key, value = (tf.transpose(tf.cast(x, tf.float32), [0, 2, 1, 3]) for x in (query, key, value))
    query = query * scale
    if key_block is None:
        rows = _Rows(tf.shape(query)[2], query_block, mask, mask_per_query)
        attend = _differentiable(functools.partial(_rows_forward, rows), functools.partial(_rows_backward, rows))
    else:
        tiles = _Tiles(tf.shape(query)[2], tf.shape(key)[2], query_block, key_block, is_causal, mask,
                       mask_per_query, mask_per_key)
        attend = _differentiable(functools.partial(_forward, tiles), functools.partial(_backward, tiles))

    output = attend(query, key, value)
    return tf.cast(tf.transpose(output, [0, 2, 1, 3]), dtype)


class _Tiles:
    """The block geometry shared by the forward and backward loops, and the mask of one tile."""

    def __init__(self, q_len, k_len, query_block, key_block, is_causal, mask, mask_per_query, mask_per_key):
        self.q_len, self.k_len = q_len, k_len
        self.qb, self.kb, self.is_causal = query_block, key_block, is_causal
        self.nq = (q_len + query_block - 1) // query_block
        self.nk = (k_len + key_block - 1) // key_block
        self.mask, self.mask_per_query, self.mask_per_key = mask, mask_per_query, mask_per_key
        if mask is not None:  # (B|1, H|1, nq|1, qb|1, nk|1, kb|1), padding masked
            if mask_per_key:
                mask = tf.pad(mask, [[0, 0], [0, 0], [0, 0], [0, self.nk * self.kb - k_len]])
                mask = tf.reshape(mask, tf.concat([tf.shape(mask)[:3], [self.nk, self.kb]], 0))
            else:  # one value for every key of a row
                mask = mask[..., None]
            self.mask = self.query_blocks(mask) if mask_per_query else mask[:, :, None]

    def query_blocks(self, x):  # (B, H, T, ...) -> (B, H, nq, qb, ...), zero-padded
        return _blocks(x, self.qb, self.nq)

    def key_blocks(self, x):  # (B, H, S, d) -> (B, H, nk, kb, d), zero-padded
        return _blocks(x, self.kb, self.nk)

    def key_blocks_of(self, i):
        """Query block i sees key blocks [0, n): with causality, none past the diagonal."""
        if not self.is_causal:
            return self.nk
        return tf.minimum(self.nk, ((i + 1) * self.qb - 1) // self.kb + 1)

    def first_query_block_of(self, j):
        """Key block j is seen by query blocks [first, nq)."""
        return (j * self.kb) // self.qb if self.is_causal else 0

    def allowed(self, i, j):
        """The (B|1, H|1, qb, kb) boolean mask of tile (i, j)."""
        rows = i * self.qb + tf.range(self.qb)[:, None]
        cols = j * self.kb + tf.range(self.kb)[None, :]
        allowed = cols < self.k_len
        if self.is_causal:
            allowed &= cols <= rows
        allowed = allowed[None, None]
        if self.mask is not None:
            mask = tf.gather(self.mask, i, axis=2) if self.mask_per_query else self.mask[:, :, 0]
            allowed &= tf.gather(mask, j, axis=3) if self.mask_per_key else mask[:, :, :, 0]
        return allowed

    def masked(self, i, j, tile, fill):
        """`tile` (B, H, qb, kb) with `fill` where tile (i, j) may not attend. Tiles that no mask,
        no padding and no diagonal cross (most of them) skip the select."""
        if self.mask is not None:
            return tf.where(self.allowed(i, j), tile, fill)
        inside = (j + 1) * self.kb <= self.k_len
        if self.is_causal:
            inside &= (j + 1) * self.kb - 1 <= i * self.qb
        return tf.cond(inside, lambda: tile, lambda: tf.where(self.allowed(i, j), tile, fill))


class _Rows:
    """Whole-row tiles: query blocks of `query_block` rows, each against all S keys."""

    def __init__(self, q_len, query_block, mask, mask_per_query):
        self.q_len, self.qb = q_len, query_block
        self.nq = (q_len + query_block - 1) // query_block
        self.mask, self.mask_per_query, self.attended = mask, mask_per_query, None
        if mask is not None:  # (B|1, H|1, nq|1, qb|1, S); rows with no key to attend get zeros
            self.attended = tf.cast(tf.reduce_any(mask, axis=-1, keepdims=True), tf.float32)
            self.mask = _blocks(mask, query_block, self.nq) if mask_per_query else mask[:, :, None]

    def weights(self, i, query, key):
        """The softmax weights (B, H, qb, S) of query block i (`query` (B, H, qb, d))."""
        scores = tf.einsum("bhqd,bhkd->bhqk", query, key)
        if self.mask is not None:
            mask = tf.gather(self.mask, i, axis=2) if self.mask_per_query else self.mask[:, :, 0]
            scores = tf.where(mask, scores, LOWEST_SCORE)
        return tf.nn.softmax(scores)


def _differentiable(forward, backward):
    """`forward(query, key, value)` -> `(output, *saved)`, with the gradient
    `backward(query, key, value, output, *saved, d_output)`."""

    @tf.custom_gradient
    def attend(query, key, value):
        # Run eagerly, a tape would record (and keep alive) every tile: the loops see constants.
        query, key, value = (tf.stop_gradient(x) for x in (query, key, value))
        results = forward(query, key, value)
        return results[0], lambda d_output: backward(query, key, value, *results, d_output)

    return attend


def _blocks(x, block, blocks):
    """(B, H, L, ...) -> (B, H, blocks, block, ...), zero-padded to blocks * block along L."""
    rank = len(x.shape)
    x = tf.pad(x, [[0, 0], [0, 0], [0, blocks * block - tf.shape(x)[2]]] + [[0, 0]] * (rank - 3))
    return tf.reshape(x, tf.concat([tf.shape(x)[:2], [blocks, block], tf.shape(x)[3:]], 0))


def _unblock(x, length):
    """(n, B, H, block, ...) -> (B, H, length, ...): blocks stacked first (by a loop) back into
    one sequence, cut to `length`."""
    rank = len(x.shape)
    x = tf.transpose(x, [1, 2, 0] + list(range(3, rank)))
    x = tf.reshape(x, tf.concat([tf.shape(x)[:2], [-1], tf.shape(x)[4:]], 0))
    return x[:, :, :length]


def _forward(tiles, query, key, value):
    """Outputs (B, H, T, dv) and row log-sum-exps (B, H, T) (+inf where nothing is attended)."""
    queries, keys, values = tiles.query_blocks(query), tiles.key_blocks(key), tiles.key_blocks(value)

    def query_block(i):
        q = tf.gather(queries, i, axis=2)  # (B, H, qb, d)
        rows = tf.shape(q)[:3]
        start = (0, tf.fill(rows, -float("inf")), tf.zeros(rows),
                 tf.zeros(tf.concat([rows, tf.shape(values)[-1:]], 0)))

        def key_block(j, m, total, out):
            scores = tf.einsum("bhqd,bhkd->bhqk", q, tf.gather(keys, j, axis=2))
            scores = tiles.masked(i, j, scores, -float("inf"))
            m_new = tf.maximum(m, tf.reduce_max(scores, axis=-1))
            shift = tf.where(tf.math.is_inf(m_new), 0.0, m_new)  # rows with nothing yet
            p = tf.exp(scores - shift[..., None])
            rescale = tf.exp(m - shift)
            new_out = out * rescale[..., None] + tf.einsum("bhqk,bhkd->bhqd", p, tf.gather(values, j, axis=2))
            new_total = total * rescale + tf.reduce_sum(p, axis=-1)
            # The loop keeps the shapes it started with (a block of one row is known statically).
            return j + 1, tf.ensure_shape(m_new, m.shape), tf.ensure_shape(new_total, total.shape), \
                tf.ensure_shape(new_out, out.shape)

        _, m, total, out = tf.while_loop(lambda j, *_: j < tiles.key_blocks_of(i), key_block, start,
                                         parallel_iterations=_PARALLEL)
        attended = total > 0
        out = out / tf.where(attended, total, 1.0)[..., None]  # empty rows: 0
        return out, tf.where(attended, m + tf.math.log(tf.where(attended, total, 1.0)), float("inf"))

    out, log_sum = tf.map_fn(query_block, tf.range(tiles.nq), fn_output_signature=(tf.float32, tf.float32),
                            parallel_iterations=_PARALLEL)
    return _unblock(out, tiles.q_len), _unblock(log_sum, tiles.q_len)


def _rows_forward(rows, query, key, value):
    """(outputs (B, H, T, dv),): nothing else to save for the gradient."""
    queries = _blocks(query, rows.qb, rows.nq)

    def query_block(i):
        return tf.einsum("bhqk,bhkd->bhqd", rows.weights(i, tf.gather(queries, i, axis=2), key), value)

    out = tf.map_fn(query_block, tf.range(rows.nq), fn_output_signature=tf.float32,
                    parallel_iterations=_PARALLEL)
    out = _unblock(out, rows.q_len)
    return (out if rows.attended is None else out * rows.attended,)


def _rows_backward(rows, query, key, value, output, d_output):
    """As `_backward`, with the weights of each query block recomputed by `rows.weights`."""
    if rows.attended is not None:  # rows with no key to attend: their (uniform) weights get no gradient
        d_output *= rows.attended
    queries, d_outputs = _blocks(query, rows.qb, rows.nq), _blocks(d_output, rows.qb, rows.nq)
    deltas = _blocks(tf.reduce_sum(d_output * output, axis=-1), rows.qb, rows.nq)

    def query_block(i, d_queries, d_key, d_value):
        q, d_out = tf.gather(queries, i, axis=2), tf.gather(d_outputs, i, axis=2)
        p = rows.weights(i, q, key)
        d_value += tf.einsum("bhqk,bhqd->bhkd", p, d_out)
        d_s = p * (tf.einsum("bhqd,bhkd->bhqk", d_out, value) - tf.gather(deltas, i, axis=2)[..., None])
        d_queries = d_queries.write(i, tf.einsum("bhqk,bhkd->bhqd", d_s, key))
        return i + 1, d_queries, d_key + tf.einsum("bhqk,bhqd->bhkd", d_s, q), d_value

    d_queries = tf.TensorArray(tf.float32, rows.nq, element_shape=[None] * 4)
    start = (0, d_queries, tf.zeros_like(key), tf.zeros_like(value))
    _, d_queries, d_key, d_value = tf.while_loop(lambda i, *_: i < rows.nq, query_block, start,
                                                 parallel_iterations=_PARALLEL)
    return _unblock(d_queries.stack(), rows.q_len), d_key, d_value


def _backward(tiles, query, key, value, output, log_sum, d_output):
    """Gradients of (query, key, value), tile by tile: P = exp(S - lse), dV = Pᵀ dO,
    dS = P ∘ (dO Vᵀ - rowsum(dO ∘ O)), dQ = dS K, dK = dSᵀ Q."""
    queries, keys, values = tiles.query_blocks(query), tiles.key_blocks(key), tiles.key_blocks(value)
    d_outputs = tiles.query_blocks(d_output)
    log_sums = tiles.query_blocks(log_sum)
    deltas = tiles.query_blocks(tf.reduce_sum(d_output * output, axis=-1))  # (B, H, nq, qb)

    def key_block(j, d_queries, d_keys, d_values):
        k, v = tf.gather(keys, j, axis=2), tf.gather(values, j, axis=2)  # (B, H, kb, d)

        def query_block(i, d_queries, d_k, d_v):
            q, d_out = tf.gather(queries, i, axis=2), tf.gather(d_outputs, i, axis=2)
            scores = tf.einsum("bhqd,bhkd->bhqk", q, k)
            p = tf.exp(scores - tf.gather(log_sums, i, axis=2)[..., None])
            p = tiles.masked(i, j, p, 0.0)
            d_v += tf.einsum("bhqk,bhqd->bhkd", p, d_out)
            d_p = tf.einsum("bhqd,bhkd->bhqk", d_out, v)
            d_s = p * (d_p - tf.gather(deltas, i, axis=2)[..., None])
            d_q = tf.einsum("bhqk,bhkd->bhqd", d_s, k)
            d_queries = tf.tensor_scatter_nd_add(d_queries, [[i]], d_q[None])
            return i + 1, d_queries, d_k + tf.einsum("bhqk,bhqd->bhkd", d_s, q), d_v

        start = (tiles.first_query_block_of(j), d_queries, tf.zeros_like(k), tf.zeros_like(v))
        _, d_queries, d_k, d_v = tf.while_loop(lambda i, *_: i < tiles.nq, query_block, start,
                                               parallel_iterations=_PARALLEL)
        d_keys = tf.tensor_scatter_nd_update(d_keys, [[j]], d_k[None])
        d_values = tf.tensor_scatter_nd_update(d_values, [[j]], d_v[None])
        return j + 1, d_queries, d_keys, d_values

    block_major = [2, 0, 1, 3, 4]  # (B, H, n, block, d) -> (n, B, H, block, d)
    start = (0, tf.zeros_like(tf.transpose(queries, block_major)),
             tf.zeros_like(tf.transpose(keys, block_major)), tf.zeros_like(tf.transpose(values, block_major)))
    _, d_queries, d_keys, d_values = tf.while_loop(lambda j, *_: j < tiles.nk, key_block, start,
                                                   parallel_iterations=_PARALLEL)
    return (_unblock(d_queries, tiles.q_len), _unblock(d_keys, tiles.k_len),
            _unblock(d_values, tiles.k_len))
