import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.layers.modeling.cached_multi_head_attention import CachedMultiHeadAttention
from keras_hub.src.layers.modeling.transformer_layer_utils import compute_causal_mask

from keras_seqattn import MultiHeadAttention

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 6, 8)).astype("float32")
ENCODED = RNG.normal(size=(2, 5, 8)).astype("float32")


@pytest.mark.parametrize("init", [dict(num_heads=2, key_dim=4), dict(num_heads=4, key_dim=4, num_key_value_heads=2)])
def test_step_by_step_cached_decode_equals_the_full_causal_call(init):
    layer = MultiHeadAttention(**init)
    full, full_scores = layer(X, X, use_causal_mask=True, return_attention_scores=True)
    cache = np.zeros((2, 2, 6, layer.num_key_value_heads, 4), "float32")
    for t in range(6):
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


def test_cache_convention_matches_keras_hub():
    ours, theirs = MultiHeadAttention(2, 4), CachedMultiHeadAttention(2, 4)
    ours(X, X)
    theirs(X, X)
    ours.set_weights(theirs.get_weights())
    empty = np.zeros((2, 2, 6, 2, 4), "float32")
    # Self-attention: two new steps written at index 2.
    out, cache = ours(X[:, 2:4], X[:, 2:4], use_causal_mask=True, cache=empty, cache_update_index=2)
    ref_out, ref_cache = theirs(
        X[:, 2:4], X[:, 2:4], cache=empty, cache_update_index=2, attention_mask=compute_causal_mask(2, 6, 2, 2)
    )
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(cache, ref_cache, atol=1e-6)
    # Cross-attention: the cache filled once (index 0), then read as it is (index None).
    _, cross = ours(X[:, :1], ENCODED, cache=np.zeros((2, 2, 5, 2, 4), "float32"), cache_update_index=0)
    out, same = ours(X[:, 3:4], ENCODED, cache=cross)
    np.testing.assert_array_equal(same, cross)
    np.testing.assert_allclose(out, ours(X[:, 3:4], ENCODED), atol=1e-5)


def test_cached_step_under_xla_never_retraces():
    layer = MultiHeadAttention(2, 4)
    layer(X, X)
    step = tf.function(
        lambda x, cache, index: layer(x, x, use_causal_mask=True, cache=cache, cache_update_index=index),
        jit_compile=True,
    )
    cache = tf.zeros((2, 2, 6, 2, 4))
    full = layer(X, X, use_causal_mask=True)
    for t in range(6):
        out, cache = step(X[:, t : t + 1], cache, tf.constant(t))
        np.testing.assert_allclose(out, full[:, t : t + 1], atol=1e-5)
    assert step.experimental_get_tracing_count() == 1


def test_causality_proven_by_gradients():
    layer = MultiHeadAttention(2, 4)
    inputs = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        out = layer(inputs, inputs, use_causal_mask=True)
        per_position = [tf.reduce_sum(out[:, i]) for i in range(6)]
    for i, total in enumerate(per_position):
        grad = np.abs(np.asarray(tape.gradient(total, inputs))).sum(axis=(0, 2))  # (T,)
        assert np.all(grad[i + 1 :] == 0), f"output {i} depends on later inputs: {grad}"
        assert np.all(grad[: i + 1] > 0), f"output {i} ignores earlier inputs: {grad}"


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(num_heads=2, key_dim=4), dict(cache_update_index=0), "cache"),
        (dict(num_heads=2, key_dim=4), dict(cache=np.zeros((2, 2, 6, 3, 4), "float32"), cache_update_index=0), "cache"),
        (dict(num_heads=2, key_dim=4), dict(cache=np.zeros((2, 6, 2, 4), "float32"), cache_update_index=0), "cache"),
        (
            dict(num_heads=2, key_dim=4, value_dim=3),
            dict(cache=np.zeros((2, 2, 6, 2, 4), "float32"), cache_update_index=0),
            "value_dim",
        ),
    ],
)
def test_bad_cache_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        MultiHeadAttention(**init)(X[:, :1], X[:, :1], **call)


def test_compute_cache_equals_the_cache_filled_by_a_call():
    layer = MultiHeadAttention(num_heads=4, key_dim=4, num_key_value_heads=2)
    with pytest.raises(ValueError, match="compute_cache"):
        layer.compute_cache(ENCODED)
    _, filled = layer(X[:, :1], ENCODED, cache=np.zeros((2, 2, 5, 2, 4), "float32"), cache_update_index=0)
    np.testing.assert_allclose(layer.compute_cache(ENCODED), filled, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_sliding_window_as_keras_and_cached_step_by_step(causal):
    import keras

    theirs, ours = keras.layers.MultiHeadAttention(2, 4, sliding_window=2), MultiHeadAttention(2, 4, sliding_window=2)
    theirs(X, X)
    ours(X, X)
    ours.set_weights(theirs.get_weights())
    out, scores = ours(X, X, use_causal_mask=causal, return_attention_scores=True)
    ref_out, ref_scores = theirs(X, X, use_causal_mask=causal, return_attention_scores=True)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    i, j = np.arange(6)[:, None], np.arange(6)[None, :]
    outside = (np.abs(i - j) >= 2) | ((j > i) if causal else False)
    assert np.all(scores.numpy()[..., outside] == 0) and np.all(scores.numpy()[..., ~outside] > 0)
    if causal:  # cached, one step at a time, the window follows the cache index
        cache = np.zeros((2, 2, 6, 2, 4), "float32")
        for t in range(6):
            step, step_scores, cache = ours(
                X[:, t : t + 1],
                X[:, t : t + 1],
                use_causal_mask=True,
                cache=cache,
                cache_update_index=t,
                return_attention_scores=True,
            )
            np.testing.assert_allclose(step, out[:, t : t + 1], atol=1e-5)
            np.testing.assert_allclose(step_scores, scores[:, :, t : t + 1], atol=1e-6)
