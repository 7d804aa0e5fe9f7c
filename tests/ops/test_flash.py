"""The flash path (ops/flash.py), online tiles and whole rows, against the dense path and NumPy:
outputs and gradients for every mask kind, with tiny tiles so that every case spans many tiles,
padding and (with causality) skipped tiles."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import ops
from keras_seqattn.ops import attention
from tests import reference

RNG = np.random.default_rng(0)
B, T, S, H, K, D, DV = 2, 13, 21, 4, 2, 8, 6


# (tile kind, causal): whole rows of 4 queries, 4 x 8 online tiles, causal rows of 4.
TILES = [("online", False), ("online", True), ("whole_rows", False), ("causal_rows", True)]


# Tiles of 4 queries: whole rows (any S fits), 4 x 8 online tiles, or causal rows of 4.
TINY = {
    "online": ops.AttentionPolicy(row_scores=1, causal_tiles=(4, 8), online_tiles=(4, 8)),
    "whole_rows": ops.AttentionPolicy(row_scores=4 * S, min_row_block=4),
    "causal_rows": ops.AttentionPolicy(causal_kind="rows", causal_rows=4),
}


def use_tiny_tiles(tiles):
    ops.set_policy(TINY[tiles])  # tests/conftest.py sets it back after each test


def _inputs(dtype="float32"):
    return (
        tf.constant(RNG.normal(size=(B, T, H, D)), dtype),
        tf.constant(RNG.normal(size=(B, S, K, D)), dtype),
        tf.constant(RNG.normal(size=(B, S, K, DV)), dtype),
    )


def _masks():
    padding = np.arange(S)[None, :] < np.array([S, 15])[:, None]  # (B, S)
    per_query = RNG.random((B, T, S)) > 0.3
    per_query[0, 3] = False  # a query with nothing to attend
    per_head = RNG.random((B, H, T, S)) > 0.5
    return {"none": None, "padding": padding, "per_query": per_query, "per_head": per_head}


def _output_and_gradients(flash, query, key, value, mask, causal):
    with tf.GradientTape() as tape:
        tape.watch([query, key, value])
        output = ops.scaled_dot_product_attention(query, key, value, mask=mask, is_causal=causal, flash_attention=flash)
        loss = tf.reduce_sum(output * tf.sin(output))  # a non-uniform upstream gradient
    return output, tape.gradient(loss, [query, key, value])


@pytest.mark.parametrize("tiles, causal", TILES)
@pytest.mark.parametrize("mask_kind", ["none", "padding", "per_query", "per_head"])
def test_outputs_and_gradients_equal_the_dense_path(tiles, causal, mask_kind):
    use_tiny_tiles(tiles)
    query, key, value = _inputs()
    mask = _masks()[mask_kind]
    flash_output, flash_grads = _output_and_gradients(True, query, key, value, mask, causal)
    dense_output, dense_grads = _output_and_gradients(False, query, key, value, mask, causal)
    np.testing.assert_allclose(flash_output, dense_output, atol=1e-5, rtol=1e-5)
    for flash_grad, dense_grad in zip(flash_grads, dense_grads):
        np.testing.assert_allclose(flash_grad, dense_grad, atol=1e-5, rtol=1e-5)
    ref_mask = (
        None
        if mask is None
        else {2: lambda m: m[:, None, None], 3: lambda m: m[:, None], 4: lambda m: m}[mask.ndim](mask)
    )
    expected, _ = reference.multi_head_attention(query.numpy(), key.numpy(), value.numpy(), ref_mask, causal)
    np.testing.assert_allclose(flash_output, expected, atol=1e-5, rtol=1e-5)
    if mask_kind == "per_query":
        assert np.all(flash_output.numpy()[0, 3] == 0)  # nothing to attend: zero, not NaN


def test_single_head_inputs_and_default_tiles():
    query, key, value = (
        tf.constant(RNG.normal(size=shape), "float32") for shape in ((2, 300, 16), (2, 1100, 16), (2, 1100, 5))
    )
    mask = np.arange(1100)[None, :] < np.array([1100, 700])[:, None]
    flash = ops.scaled_dot_product_attention(query, key, value, mask=mask, flash_attention=True)
    dense = ops.scaled_dot_product_attention(query, key, value, mask=mask, flash_attention=False)
    assert flash.shape == (2, 300, 5)
    np.testing.assert_allclose(flash, dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tiles, causal", TILES[1:])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_stays_finite_and_close(tiles, causal, dtype):
    use_tiny_tiles(tiles)
    query, key, value = _inputs(dtype)
    mask = _masks()["per_query"]
    output, grads = _output_and_gradients(True, query, key, value, mask, causal)
    assert output.dtype == dtype
    assert all(np.all(np.isfinite(np.asarray(tf.cast(x, "float32")))) for x in [output, *grads])
    expected, _ = _output_and_gradients(False, *(tf.cast(x, "float32") for x in (query, key, value)), mask, causal)
    np.testing.assert_allclose(tf.cast(output, "float32"), expected, atol=5e-2, rtol=5e-2)


def test_dispatch_picks_the_flash_path_only_above_the_threshold(monkeypatch):
    calls = []
    for name in ("_dense_kernel", "_flash_kernel"):
        kernel = getattr(attention, name)
        monkeypatch.setattr(attention, name, lambda *a, _k=kernel, _n=name, **kw: calls.append(_n) or _k(*a, **kw))
    query, key, value = _inputs()
    policy = ops.AttentionPolicy(flash_min_scores=T * S, training_budget=3 * 4 * B * H * T * S)
    with ops.policy_scope(policy):
        ops.scaled_dot_product_attention(query, key[:, :-1], value[:, :-1])  # T·(S-1): below
        ops.scaled_dot_product_attention(query, key, value, return_attention_scores=True)  # weights
        ops.scaled_dot_product_attention(query, key, value, dropout_rate=0.5, training=True)  # dropout
        ops.scaled_dot_product_attention(query, key, value, flash_attention=False)  # forced dense
        ops.scaled_dot_product_attention(query, key, value, training=True)  # training within the budget
        assert calls == ["_dense_kernel"] * 5
        ops.scaled_dot_product_attention(query, key, value)  # at the threshold
        ops.scaled_dot_product_attention(query, key, value, is_causal=True, training=True)  # causal: tiles
        ops.scaled_dot_product_attention(query, key[:, :-1], value[:, :-1], flash_attention=True)  # forced
    ops.scaled_dot_product_attention(
        query, key, value, training=True, policy=dataclasses.replace(policy, training_budget=3 * 4 * B * H * T * S - 1)
    )
    assert calls[5:] == ["_flash_kernel"] * 4


def test_multi_head_attention_flash_equals_dense_with_the_same_weights():
    from keras_seqattn import MultiHeadAttention

    query = tf.constant(RNG.normal(size=(2, 40, 16)), "float32")
    layers = [MultiHeadAttention(num_heads=4, key_dim=4, flash_attention=flash) for flash in (True, False)]
    outputs = []
    for layer in layers:
        layer(query, query)
        if outputs:
            layer.set_weights(layers[0].get_weights())
        outputs.append(layer(query, query, use_causal_mask=True))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(flash_attention="yes"), "flash"),
        (dict(flash_attention=True, return_attention_scores=True), "return_attention_scores"),
        (dict(flash_attention=True, dropout_rate=0.5, training=True), "dropout"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ops.scaled_dot_product_attention(*_inputs(), **kwargs)


def test_layers_reject_a_bad_flash_argument():
    from keras_seqattn import MultiHeadAttention, ScaledDotProduct, TransformerEncoder

    for make in (
        lambda: MultiHeadAttention(2, 4, flash_attention=1),
        lambda: ScaledDotProduct(flash_attention="auto"),
        lambda: TransformerEncoder(8, 2, flash_attention=0),
    ):
        with pytest.raises(ValueError, match="flash"):
            make()


_MEMORY_CHILD = """
import sys
import tensorflow as tf
from keras_seqattn import ops
length, causal, graph = int(sys.argv[1]), sys.argv[2] == "causal", sys.argv[3] == "graph"
q, k, v = (tf.random.normal((1, length, 1, 64)) for _ in range(3))

def forward_backward(q, k, v):
    with tf.GradientTape() as tape:
        tape.watch([q, k, v])
        out = ops.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return tape.gradient(out, [q, k, v])

run = tf.function(forward_backward) if graph else forward_backward
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak RSS drops to the current RSS
status = lambda field: next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field))
before = status("VmRSS:")
[g.numpy() for g in run(q, k, v)]
print((status("VmHWM:") - before) / 1024)
"""


@pytest.mark.parametrize("causal", ["causal", "none"])
@pytest.mark.parametrize("graph", ["eager", "graph"])
def test_forward_backward_never_holds_a_score_matrix(causal, graph):
    # L = 8192, one head: one T x S float32 matrix is 256 MB. The first call is measured (a warm-up
    # would leave its freed memory resident and hide the growth), so the causal kernel's XLA
    # compilation is counted too (about 190 MB in all; 80 MB without causality, whole rows). Without causality,
    # run eagerly, it grew by 650 MB when the tape recorded the loops' tiles.
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, "8192", causal, graph], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    grown_mb = float(result.stdout.strip().splitlines()[-1])
    assert grown_mb < 256, f"forward+backward grew the RSS by {grown_mb:.0f} MB"


def test_forced_flash_with_lengths_unknown_when_traced_takes_online_tiles():
    policy = ops.AttentionPolicy()
    assert policy.plan(None, None, flash_attention=True).blocks == (1024, 1024)
    assert policy.plan(None, None, is_causal=True, flash_attention=True).blocks == (256, 256)


@pytest.mark.parametrize("tiles, causal", TILES)
@pytest.mark.parametrize("shape", [(B, 1), (1, 1), (B, T, 1), (1, 1, 1), (B, 1, T, 1), (1, H, 1, 1), (1, H, T, 1)])
def test_masks_with_a_size_one_key_axis(tiles, causal, shape):
    # Regression: the causal tiles padded a size-1 key axis as if it were S long and crashed.
    use_tiny_tiles(tiles)
    query, key, value = _inputs()
    mask = RNG.random(shape) > 0.3
    flash_output, flash_grads = _output_and_gradients(True, query, key, value, mask, causal)
    dense_output, dense_grads = _output_and_gradients(False, query, key, value, mask, causal)
    np.testing.assert_allclose(flash_output, dense_output, atol=1e-5, rtol=1e-5)
    for flash_grad, dense_grad in zip(flash_grads, dense_grads):
        np.testing.assert_allclose(flash_grad, dense_grad, atol=1e-5, rtol=1e-5)


def test_the_reported_size_one_key_axis_cases():
    query, key = np.ones((1, 1, 1, 1), "float32"), np.ones((1, 2, 1, 1), "float32")
    mask = np.ones((1, 1), bool)
    for flash in (True, False):
        np.testing.assert_allclose(
            ops.scaled_dot_product_attention(query, key, key, mask=mask, is_causal=True, flash_attention=flash),
            [[[[1.0]]]],
        )
    import keras

    from keras_seqattn import MultiHeadAttention, ScaledDotProduct

    # At T·S = 1024², the default dispatch takes the flash path: a query mask alone is (B, T, 1).
    x = RNG.normal(size=(1, 1024, 8)).astype("float32")
    x[0, -5:] = 0.0
    query_mask = np.any(x != 0, axis=-1)
    layer = MultiHeadAttention(1, 4)
    blocked = layer(x, x, query_mask=query_mask, use_causal_mask=True)
    layer.flash_attention = False
    np.testing.assert_allclose(blocked, layer(x, x, query_mask=query_mask, use_causal_mask=True), atol=1e-5)
    masked = keras.layers.Masking()(x)  # the same mask, implicit
    layer.flash_attention = None
    np.testing.assert_allclose(blocked, layer(masked, masked, use_causal_mask=True), atol=1e-5)
    attend = ScaledDotProduct()
    np.testing.assert_allclose(
        attend(x, x, x, query_mask=query_mask, use_causal_mask=True),
        ScaledDotProduct(flash_attention=False)(x, x, x, query_mask=query_mask, use_causal_mask=True),
        atol=1e-5,
    )


def test_online_tiles_beyond_whole_rows_take_size_one_key_axes():
    # Keys too long for whole rows of 64 queries: the non-causal path's online tiles.
    query, key, value = (
        tf.constant(RNG.normal(size=s), "float32") for s in ((1, 4, 1, 4), (1, 20000, 1, 4), (1, 20000, 1, 2))
    )
    assert ops.get_policy().plan(4, 20000, flash_attention=True).blocks[1] is not None
    mask = np.array([[[[True]], [[False]], [[True]], [[True]]]]).reshape(1, 1, 4, 1)
    flash = ops.scaled_dot_product_attention(query, key, value, mask=mask, flash_attention=True)
    dense = ops.scaled_dot_product_attention(query, key, value, mask=mask, flash_attention=False)
    np.testing.assert_allclose(flash, dense, atol=1e-5)
    assert np.all(flash.numpy()[0, 1] == 0)


@pytest.mark.parametrize("offset", [1, 5, S - T])
@pytest.mark.parametrize("mask_kind", ["none", "padding"])
def test_causal_gradients_with_a_query_offset_equal_the_dense_path(offset, mask_kind):
    # Prefill and cached training: the queries sit at offset.. among the keys. The plan sends an
    # offset to the online tiles whatever the policy's causal kind; both policies are checked.
    query, key, value = _inputs()
    mask = _masks()[mask_kind]
    results = {}
    for name, policy in [("dense", None), ("online", TINY["online"]), ("causal_rows", TINY["causal_rows"])]:
        with tf.GradientTape() as tape:
            tape.watch([query, key, value])
            output = ops.scaled_dot_product_attention(
                query,
                key,
                value,
                mask=mask,
                is_causal=True,
                query_offset=offset,
                flash_attention=policy is not None,
                policy=policy,
            )
            loss = tf.reduce_sum(output * tf.sin(output))
        results[name] = (output, *tape.gradient(loss, [query, key, value]))
    for name in ("online", "causal_rows"):
        for got, want in zip(results[name], results["dense"]):
            np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
    # Query i sees keys up to offset + i: the last keys get no gradient from the first queries alone.
    assert np.any(results["dense"][2].numpy()[:, offset + T :] == 0) or offset + T >= S
