"""NumPy references for the attention math (float64), written from the papers' equations."""

import numpy as np


def softmax(scores, mask=None):
    """Softmax over the last axis; masked entries 0; a row with nothing to attend is all 0."""
    scores = np.asarray(scores, np.float64)
    if mask is None:
        mask = np.ones(scores.shape, bool)
    mask = np.broadcast_to(mask, scores.shape)
    shifted = np.where(mask, scores, -np.inf)
    top = np.max(shifted, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    exp = np.where(mask, np.exp(shifted - top), 0.0)
    total = exp.sum(-1, keepdims=True)
    return np.where(total > 0, exp / np.where(total > 0, total, 1.0), 0.0)


def multi_head_attention(
    query, key, value, mask=None, causal=False, scale=None, bias=None, slopes=None, window=None, offset=0
):
    """query (B, T, H, d), key/value (B, S, K, ·) with H a multiple of K; mask broadcastable to
    (B, H, T, S); bias added to the scaled scores; ALiBi slopes (H,) add m_h (j - i); query i sits
    at position i + offset; window w keeps |j - i| < w. Returns output (B, T, H, dv) and weights
    (B, H, T, S)."""
    heads, kv_heads = query.shape[2], key.shape[2]
    key = np.repeat(np.asarray(key, np.float64), heads // kv_heads, axis=2)
    value = np.repeat(np.asarray(value, np.float64), heads // kv_heads, axis=2)
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = np.einsum("bthd,bshd->bhts", np.asarray(query, np.float64), key) * scale
    rows = np.arange(scores.shape[2])[:, None] + offset
    cols = np.arange(scores.shape[3])[None, :]
    if bias is not None:
        scores = scores + np.asarray(bias, np.float64)
    if slopes is not None:
        scores = scores + np.asarray(slopes, np.float64)[None, :, None, None] * (cols - rows)
    full = np.ones(scores.shape, bool)
    if mask is not None:
        full &= np.broadcast_to(mask, scores.shape)
    if causal:
        full &= cols <= rows
    if window is not None:
        full &= np.abs(cols - rows) < window
    weights = softmax(scores, full)
    return np.einsum("bhts,bshd->bthd", weights, value), weights


def attention(query, key, value, mask=None, causal=False, scale=None):
    """Single head: query (B, T, d), key (B, S, d), value (B, S, dv); mask (B, T, S) or (B, 1, S)."""
    mask = None if mask is None else np.asarray(mask)[:, None]
    out, weights = multi_head_attention(query[:, :, None], key[:, :, None], value[:, :, None], mask, causal, scale)
    return out[:, :, 0], weights[:, 0]


def additive_scores(query, key, v, bias=None):
    """vᵀ tanh(q + k + b) for projected query (B, T, U) and key (B, S, U)."""
    hidden = np.asarray(query, np.float64)[:, :, None, :] + np.asarray(key, np.float64)[:, None, :, :]
    if bias is not None:
        hidden = hidden + bias
    return np.tanh(hidden) @ np.asarray(v, np.float64)


def sinusoids(length, depth, max_wavelength=10000.0, start=0):
    table = np.zeros((length, depth))
    for pos in range(length):
        for j in range(depth):
            angle = (start + pos) / max_wavelength ** ((j - j % 2) / depth)
            table[pos, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return table


def multi_head_attention_gradients(
    query, key, value, d_output, mask=None, causal=False, scale=None, bias=None, slopes=None, window=None, offset=0
):
    """Gradients of `sum(output * d_output)` for `multi_head_attention`, derived by hand:
    dV = Pᵀ dO, dS = P ∘ (dO Vᵀ - rowsum(dO ∘ O)), dQ = scale · dS K, dK = scale · dSᵀ Q; a key/value
    head's gradient sums over the query heads that read it. Returns (d_query, d_key, d_value)."""
    heads, kv_heads = query.shape[2], key.shape[2]
    groups = heads // kv_heads
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    output, weights = multi_head_attention(query, key, value, mask, causal, scale, bias, slopes, window, offset)
    q = np.asarray(query, np.float64)
    k = np.repeat(np.asarray(key, np.float64), groups, axis=2)
    v = np.repeat(np.asarray(value, np.float64), groups, axis=2)
    d_out = np.asarray(d_output, np.float64)
    d_value = np.einsum("bhts,bthd->bshd", weights, d_out)
    d_weights = np.einsum("bthd,bshd->bhts", d_out, v)
    delta = np.einsum("bthd,bthd->bht", d_out, output)[..., None]
    d_scores = weights * (d_weights - delta)
    d_query = scale * np.einsum("bhts,bshd->bthd", d_scores, k)
    d_key = scale * np.einsum("bhts,bthd->bshd", d_scores, q)

    def per_kv_head(x):
        return x.reshape(x.shape[:2] + (kv_heads, groups) + x.shape[3:]).sum(3)

    return d_query, per_kv_head(d_key), per_kv_head(d_value), d_scores  # d_scores: the bias's gradient
