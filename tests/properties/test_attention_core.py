"""Property-based tests of `ops.scaled_dot_product_attention` against a float64 NumPy reference:
random batch, lengths 1-40, grouped-query heads, head dims, every documented mask shape (with
size-1 broadcast axes and fully masked rows), causal on and off, on the dense path and on both tile
kinds of the flash path forced with small tiles; outputs and gradients. Derandomized."""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_seqattn import ops
from tests import reference

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    batch, q_len, k_len = draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kv_heads, groups = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    heads = kv_heads * groups
    depth, value_depth = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    causal = draw(st.booleans())
    path = draw(st.sampled_from(["dense", "online", "causal_rows" if causal else "whole_rows"]))
    query_block, key_block = draw(st.sampled_from([1, 2, 4, 8, 16])), draw(st.sampled_from([1, 2, 4, 8, 16]))
    policy = {
        "dense": ops.AttentionPolicy(),
        "online": ops.AttentionPolicy(
            row_scores=1, causal_tiles=(query_block, key_block), online_tiles=(query_block, key_block)
        ),
        "whole_rows": ops.AttentionPolicy(row_scores=query_block * k_len, min_row_block=query_block),
        "causal_rows": ops.AttentionPolicy(causal_kind="rows", causal_rows=query_block),
    }[path]
    # A mask of rank 2 (batch, S), 3 (batch, T, S) or 4 (batch, heads, T, S), each axis full or 1.
    rank = draw(st.sampled_from([None, 2, 3, 4]))
    mask = None
    if rank is not None:
        full = {2: (batch, k_len), 3: (batch, q_len, k_len), 4: (batch, heads, q_len, k_len)}[rank]
        shape = tuple(size if draw(st.booleans()) else 1 for size in full)
        density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
        seed = draw(st.integers(0, 2**31))
        mask = np.random.default_rng(seed).random(shape) < density
    # Positions inside attention: a window, ALiBi slopes, an additive bias, a query offset.
    window = draw(st.sampled_from([None, None, 1, 3, 8]))
    slopes = draw(st.sampled_from([None, 0.5]))
    bias_shape = draw(st.sampled_from([None, (batch, heads, q_len, k_len), (1, heads, 1, k_len), (1, 1, q_len, k_len)]))
    offset = draw(st.sampled_from([None, None, 0, 3]))
    if path in ("whole_rows", "causal_rows") and (window or slopes or bias_shape or offset is not None):
        path = "online"  # those run on online tiles
        policy = ops.AttentionPolicy(
            row_scores=1, causal_tiles=(query_block, key_block), online_tiles=(query_block, key_block)
        )
    seed = draw(st.integers(0, 2**31))
    return dict(
        batch=batch,
        q_len=q_len,
        k_len=k_len,
        heads=heads,
        kv_heads=kv_heads,
        depth=depth,
        value_depth=value_depth,
        causal=causal,
        path=path,
        policy=policy,
        mask=mask,
        seed=seed,
        window=window,
        slopes=None if slopes is None else slopes / np.arange(1, heads + 1),
        bias_shape=bias_shape,
        offset=offset,
    )


def _reference_mask(mask):
    if mask is None:
        return None
    return {2: lambda m: m[:, None, None], 3: lambda m: m[:, None], 4: lambda m: m}[mask.ndim](mask)


@SETTINGS
@given(cases())
def test_outputs_and_gradients_match_numpy(case):
    rng = np.random.default_rng(case["seed"])
    b, t, s, h, k = case["batch"], case["q_len"], case["k_len"], case["heads"], case["kv_heads"]
    query = rng.normal(size=(b, t, h, case["depth"])).astype("float32")
    key = rng.normal(size=(b, s, k, case["depth"])).astype("float32")
    value = rng.normal(size=(b, s, k, case["value_depth"])).astype("float32")
    d_output = rng.normal(size=(b, t, h, case["value_depth"])).astype("float32")
    mask, causal = case["mask"], case["causal"]

    bias = None if case["bias_shape"] is None else rng.normal(size=case["bias_shape"]).astype("float32")
    positions = dict(window=case["window"], slopes=case["slopes"], offset=case["offset"] or 0)
    tensors = [tf.constant(x) for x in (query, key, value)] + ([] if bias is None else [tf.constant(bias)])
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        output = ops.scaled_dot_product_attention(
            *tensors[:3],
            mask=mask,
            is_causal=causal,
            flash_attention=case["path"] != "dense",
            policy=case["policy"],
            bias=None if bias is None else tensors[3],
            alibi_slopes=case["slopes"],
            window=case["window"],
            query_offset=case["offset"],
        )
    gradients = tape.gradient(output, tensors, output_gradients=tf.constant(d_output))

    expected, _ = reference.multi_head_attention(
        query, key, value, _reference_mask(mask), causal, bias=bias, **positions
    )
    np.testing.assert_allclose(output, expected, atol=2e-5, rtol=1e-4)
    *expected_gradients, d_scores = reference.multi_head_attention_gradients(
        query, key, value, d_output, _reference_mask(mask), causal, bias=bias, **positions
    )
    if bias is not None:  # the bias's gradient: dS summed over the axes it broadcasts along
        axes = tuple(a for a, size in enumerate(bias.shape) if size == 1 and d_scores.shape[a] != 1)
        expected_gradients.append(d_scores.sum(axis=axes, keepdims=True))
    for name, got, want in zip(("query", "key", "value", "bias"), gradients, expected_gradients):
        np.testing.assert_allclose(got, want, atol=5e-5, rtol=1e-4, err_msg=f"d_{name}")
