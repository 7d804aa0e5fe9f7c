"""Positions inside attention: RotaryEmbedding and ALiBi against keras-hub's layers, and in
MultiHeadAttention (cached decoding equals the full call)."""

import keras_hub
import numpy as np
import pytest

from keras_seqattn import AlibiBias, MultiHeadAttention, RotaryEmbedding, TransformerDecoder, ops
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 7, 16)).astype("float32")


@pytest.mark.parametrize(
    "init",
    [
        dict(),
        dict(max_wavelength=500, scaling_factor=2.0),
        dict(scaling_factor=4.0, rope_type="dynamic"),
        dict(sequence_axis=2, feature_axis=1),
    ],
)
@pytest.mark.parametrize("shape", [(2, 7, 8), (2, 7, 3, 8)])
def test_rotary_embedding_equals_keras_hub(init, shape):
    x = RNG.normal(size=shape).astype("float32")
    if init.get("sequence_axis") == 2:
        x = np.swapaxes(x, 1, 2) if len(shape) == 3 else np.moveaxis(x, -1, 1)
    ours, theirs = RotaryEmbedding(**init), keras_hub.layers.RotaryEmbedding(**init)
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)
    np.testing.assert_allclose(ours(x, start_index=5), theirs(x, start_index=5), atol=1e-5)
    positions = np.array([3, 1, 4, 1, 5, 9, 2], "float32")
    np.testing.assert_allclose(ours(x, positions=positions), theirs(x, positions=positions), atol=1e-5)


def test_rotary_embedding_harness(tmp_path):
    run_layer_test(
        RotaryEmbedding, dict(max_wavelength=100), dict(inputs=X), tmp_path=str(tmp_path), expected_output_shape=X.shape
    )


def test_alibi_bias_equals_keras_hub():
    scores = RNG.normal(size=(2, 6, 3, 5)).astype("float32")  # 6 heads: not a power of two
    for bias_max in (8, 4):
        np.testing.assert_allclose(AlibiBias(bias_max)(scores), keras_hub.layers.AlibiBias(bias_max)(scores), atol=1e-6)
    assert ops.alibi_slopes(8) == pytest.approx([2 ** -(i + 1) for i in range(8)])


@pytest.mark.parametrize("flash", [False, True])
def test_alibi_inside_attention_is_keras_hubs_bias_on_the_scores(flash):
    q, k, v = (RNG.normal(size=(2, 9, 6, 4)).astype("float32") for _ in range(3))
    ours = ops.scaled_dot_product_attention(
        q,
        k,
        v,
        is_causal=True,
        alibi_slopes=ops.alibi_slopes(6),
        flash_attention=flash,
        policy=ops.AttentionPolicy(causal_tiles=(4, 4)),
    )
    scores = np.einsum("bthd,bshd->bhts", q, k) / 2.0
    scores = np.asarray(keras_hub.layers.AlibiBias()(scores))  # m_h (j - (S - 1)): the same softmax
    expected, _ = reference.multi_head_attention(
        q, k, v, causal=True, bias=scores - np.einsum("bthd,bshd->bhts", q, k) / 2.0
    )
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize(
    "init",
    [
        dict(rope_max_wavelength=10000),
        dict(alibi_bias_max=8),
        dict(rope_max_wavelength=100, alibi_bias_max=4, sliding_window=3, num_key_value_heads=2),
    ],
)
def test_cached_decoding_equals_the_full_call(init):
    layer = MultiHeadAttention(num_heads=4, key_dim=4, **init)
    full, full_scores = layer(X, X, use_causal_mask=True, return_attention_scores=True)
    cache = np.zeros((2, 2, 7, layer.num_key_value_heads, 4), "float32")
    for t in range(7):
        out, scores, cache = layer(
            X[:, t : t + 1],
            X[:, t : t + 1],
            use_causal_mask=True,
            cache=cache,
            cache_update_index=t,
            return_attention_scores=True,
        )
        np.testing.assert_allclose(out, full[:, t : t + 1], atol=1e-5)
        np.testing.assert_allclose(scores, full_scores[:, :, t : t + 1], atol=1e-6)
    # A prefill of 4 steps at once, then 3 more, gives the same as the full call too.
    cache = np.zeros((2, 2, 7, layer.num_key_value_heads, 4), "float32")
    out, cache = layer(X[:, :4], X[:, :4], use_causal_mask=True, cache=cache, cache_update_index=0)
    np.testing.assert_allclose(out, full[:, :4], atol=1e-5)


def test_rope_in_attention_rotates_queries_and_keys_by_their_positions():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, rope_max_wavelength=50, use_bias=False)
    out, scores = layer(X, X, use_causal_mask=True, return_attention_scores=True)
    q = np.einsum("btd,dhk->bthk", X, layer.query_dense.kernel.numpy())
    k = np.einsum("btd,dhk->bthk", X, layer.key_dense.kernel.numpy())
    rope = keras_hub.layers.RotaryEmbedding(max_wavelength=50)
    _, expected = reference.multi_head_attention(np.asarray(rope(q)), np.asarray(rope(k)), k, causal=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_transformer_decoder_options_and_config(tmp_path):
    init = dict(intermediate_dim=16, num_heads=2, rope_max_wavelength=1000, alibi_bias_max=8, sliding_window=4)
    run_layer_test(
        TransformerDecoder, init, dict(decoder_sequence=X), tmp_path=str(tmp_path), expected_output_shape=X.shape
    )
    decoder = TransformerDecoder(**init)
    assert decoder.get_config()["sliding_window"] == 4
    assert decoder(X) is not None and decoder.self_attention.rope_max_wavelength == 1000


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(rope_max_wavelength=0), "rope_max_wavelength"),
        (dict(rope_max_wavelength=10, key_dim=3), "key_dim"),
        (dict(alibi_bias_max=-1), "alibi_bias_max"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        MultiHeadAttention(**{"num_heads": 2, "key_dim": 4, **kwargs})
    with pytest.raises(ValueError, match="rope_type"):
        RotaryEmbedding(rope_type="yarn")
