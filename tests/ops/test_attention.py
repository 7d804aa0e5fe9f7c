import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import ops
from keras_seqattn.ops import xla
from tests import reference

RNG = np.random.default_rng(0)


def _qkv(batch=2, q_len=5, k_len=7, heads=4, kv_heads=2, depth=8, value_depth=3):
    return (
        RNG.normal(size=(batch, q_len, heads, depth)).astype("float32"),
        RNG.normal(size=(batch, k_len, kv_heads, depth)).astype("float32"),
        RNG.normal(size=(batch, k_len, kv_heads, value_depth)).astype("float32"),
    )


def test_hand_case_two_keys():
    # One query, two keys: scores (q·k)/√2 = (1, 0) -> weights (e/(e+1), 1/(e+1)).
    query = np.array([[[2**0.5, 0.0]]], "float32")
    key = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    value = np.array([[[10.0], [20.0]]], "float32")
    out, weights = ops.scaled_dot_product_attention(query, key, value, return_attention_scores=True)
    e = np.e
    np.testing.assert_allclose(weights, [[[e / (e + 1), 1 / (e + 1)]]], rtol=1e-6)
    np.testing.assert_allclose(out, [[[10 * e / (e + 1) + 20 / (e + 1)]]], rtol=1e-6)


@pytest.mark.parametrize("mask_rank", [None, 2, 3, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_and_grouped_query_against_numpy(mask_rank, causal):
    query, key, value = _qkv()
    shapes = {2: (2, 7), 3: (2, 5, 7), 4: (2, 4, 5, 7)}
    mask = None if mask_rank is None else RNG.random(shapes[mask_rank]) > 0.3
    out, weights = ops.scaled_dot_product_attention(
        query, key, value, mask=mask, is_causal=causal, scale=0.3, return_attention_scores=True
    )
    ref_mask = (
        None
        if mask is None
        else {2: lambda m: m[:, None, None], 3: lambda m: m[:, None], 4: lambda m: m}[mask_rank](mask)
    )
    ref_out, ref_weights = reference.multi_head_attention(query, key, value, ref_mask, causal, 0.3)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)


def test_single_head_inputs():
    query, key, value = (x[:, :, 0] for x in _qkv(heads=1, kv_heads=1))
    mask = RNG.random((2, 5, 7)) > 0.3
    out, weights = ops.scaled_dot_product_attention(query, key, value, mask=mask, return_attention_scores=True)
    ref_out, ref_weights = reference.attention(query, key, value, mask)
    assert out.shape == (2, 5, 3) and weights.shape == (2, 5, 7)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_fully_masked_query_gets_a_zero_finite_output(dtype):
    query, key, value = (keras.ops.cast(x, dtype) for x in _qkv())
    mask = np.ones((2, 5, 7), bool)
    mask[1, 2] = False  # query 2 of batch 1 may attend nothing
    out, weights = ops.scaled_dot_product_attention(query, key, value, mask=mask, return_attention_scores=True)
    out, weights = np.asarray(keras.ops.cast(out, "float32")), np.asarray(keras.ops.cast(weights, "float32"))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    np.testing.assert_array_equal(out[1, 2], 0.0)
    np.testing.assert_array_equal(weights[1, :, 2], 0.0)
    np.testing.assert_allclose(weights[0].sum(-1), 1.0, atol=1e-2)


def _dense_reference_tf(query, key, value, mask):
    """The same math in plain TensorFlow (no kernel), for gradient checks."""
    key, value = tf.repeat(key, 2, axis=2), tf.repeat(value, 2, axis=2)
    scores = tf.einsum("bthd,bshd->bhts", query, key) / np.sqrt(query.shape[-1])
    scores = tf.where(mask, scores, -1e9)
    return tf.einsum("bhts,bshd->bthd", tf.nn.softmax(scores, -1), value)


def test_gradients_match_plain_tensorflow():
    query, key, value = (tf.constant(x) for x in _qkv())
    mask = tf.constant(RNG.random((2, 1, 5, 7)) > 0.3) | tf.eye(5, 7, dtype=tf.bool)
    upstream = tf.constant(RNG.normal(size=(2, 5, 4, 3)).astype("float32"))
    grads = []
    for fn in (
        lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, mask=mask),
        lambda q, k, v: _dense_reference_tf(q, k, v, mask),
    ):
        with tf.GradientTape() as tape:
            tape.watch([query, key, value])
            loss = tf.reduce_sum(fn(query, key, value) * upstream)
        grads.append(tape.gradient(loss, [query, key, value]))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_dropout_only_while_training_and_seeded():
    query, key, value = _qkv()
    plain = ops.scaled_dot_product_attention(query, key, value, dropout_rate=0.5)
    inference = ops.scaled_dot_product_attention(query, key, value, dropout_rate=0.5, training=False)
    np.testing.assert_array_equal(plain, inference)
    a = ops.scaled_dot_product_attention(query, key, value, dropout_rate=0.5, training=True, seed=3)
    b = ops.scaled_dot_product_attention(query, key, value, dropout_rate=0.5, training=True, seed=3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a) - np.asarray(plain)).max() > 1e-3


def test_dropout_multiplier_keeps_the_expectation():
    multiplier = np.asarray(ops.dropout_multiplier((200, 200), 0.25, seed=1))
    assert set(np.unique(multiplier)) == {0.0, np.float32(1 / 0.75)}
    assert abs(multiplier.mean() - 1.0) < 0.02


def test_additive_and_dot_attention_against_numpy():
    query, key, value = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 6, 4)), RNG.normal(size=(2, 6, 5))
    v, bias = RNG.normal(size=4), RNG.normal(size=4)
    mask = RNG.random((2, 3, 6)) > 0.3
    f32 = lambda x: np.asarray(x, "float32")
    context, weights = ops.additive_attention(f32(query), f32(key), f32(value), f32(v), f32(bias), mask=mask)
    ref_weights = reference.softmax(reference.additive_scores(query, key, v, bias), mask)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(context, ref_weights @ value, atol=1e-5)
    context, weights = ops.dot_attention(f32(query), f32(key), f32(value), scale=0.7, mask=mask)
    ref_weights = reference.softmax(0.7 * query @ key.transpose(0, 2, 1), mask)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(context, ref_weights @ value, atol=1e-5)


def test_local_window_with_gaussian_against_numpy():
    query, key, value = RNG.normal(size=(1, 2, 4)), RNG.normal(size=(1, 8, 4)), RNG.normal(size=(1, 8, 3))
    centers = np.array([[1.5, 5.0]])
    f32 = lambda x: np.asarray(x, "float32")
    context, weights = ops.dot_attention(
        f32(query), f32(key), f32(value), window_centers=centers, window=2, gaussian=True
    )
    positions = np.arange(8)
    in_window = np.abs(positions[None, None] - centers[..., None]) <= 2
    gauss = np.exp(-((positions[None, None] - centers[..., None]) ** 2) / (2 * 1.0**2))
    ref_weights = reference.softmax(query @ key.transpose(0, 2, 1), in_window) * gauss
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(context, ref_weights @ value, atol=1e-5)
    assert np.all(np.asarray(weights)[~in_window] == 0)


def _dense(query, key, value, *, is_causal):
    return ops.attention._dense_kernel.fn(
        query, key, value, None, None, None, None, None, None, is_causal=is_causal, window=None, return_weights=False
    )


def test_a_compiled_kernel_is_traced_once_across_batch_sizes_and_lengths():
    kernel = xla.xla_kernel(_dense)
    kernel(*_qkv(), xla=True, is_causal=True)
    assert kernel.tracing_count() == 1
    for batch, q_len, k_len in itertools.product((1, 3), (2, 9), (4, 11)):
        kernel(*_qkv(batch, q_len, k_len), xla=True, is_causal=True)
    assert kernel.tracing_count() == 1
    kernel(*_qkv(), xla=True, is_causal=False)  # a static argument selects another program
    assert kernel.tracing_count() == 2


def _graph_of_a_caller(call):
    """(functions marked for XLA, op types) of a non-XLA graph that runs `call(q, k, v)`."""
    query, key, value = (tf.constant(x) for x in _qkv())
    graph = tf.function(call, jit_compile=False).get_concrete_function(query, key, value).graph
    marked = [
        f.signature.name
        for f in graph.as_graph_def().library.function
        if f.attr.get("_XlaMustCompile") is not None and f.attr["_XlaMustCompile"].b
    ]
    return marked, {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("compile, compiled", [("always", True), ("auto", False), ("never", False)])
def test_the_policy_decides_which_kernels_compile_with_xla(compile, compiled):
    policy = ops.AttentionPolicy(compile=compile)
    marked, op_types = _graph_of_a_caller(lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, policy=policy))
    assert bool(marked) == compiled
    assert ("Einsum" in op_types) == (not compiled)  # else its ops sit in the caller's graph
    # The causal online tiles compile under "auto" (on a CPU, where it measured faster).
    causal, _ = _graph_of_a_caller(
        lambda q, k, v: ops.scaled_dot_product_attention(q, k, v, is_causal=True, flash_attention=True, policy=policy)
    )
    assert bool(causal) == (compile != "never")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(query=np.ones((2, 3)), key=np.ones((2, 3, 4)), value=np.ones((2, 3, 4))), "query"),
        (dict(query=np.ones((2, 3, 4)), key=np.ones((2, 3, 4, 1)), value=np.ones((2, 3, 4))), "rank"),
        (dict(query=np.ones((2, 3, 4)), key=np.ones((3, 5, 4)), value=np.ones((3, 5, 4))), "batch size"),
        (dict(query=np.ones((2, 3, 4)), key=np.ones((2, 5, 6)), value=np.ones((2, 5, 4))), "depth"),
        (dict(query=np.ones((2, 3, 4)), key=np.ones((2, 5, 4)), value=np.ones((2, 6, 4))), "sequence length"),
        (dict(query=np.ones((2, 3, 3, 4)), key=np.ones((2, 5, 2, 4)), value=np.ones((2, 5, 2, 4))), "multiple"),
        (
            dict(
                query=np.ones((2, 3, 4)), key=np.ones((2, 5, 4)), value=np.ones((2, 5, 4)), mask=np.ones((2, 4), bool)
            ),
            "mask",
        ),
        (
            dict(query=np.ones((2, 3, 4)), key=np.ones((2, 5, 4)), value=np.ones((2, 5, 4)), dropout_rate=1.0),
            "dropout_rate",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    kwargs = {
        k: (v.astype("float32") if isinstance(v, np.ndarray) and v.dtype != bool else v) for k, v in kwargs.items()
    }
    with pytest.raises(ValueError, match=argument):
        ops.scaled_dot_product_attention(**kwargs)


def test_local_window_needs_a_positive_width():
    query = np.ones((1, 2, 4), "float32")
    key = np.ones((1, 5, 4), "float32")
    with pytest.raises(ValueError, match="window"):
        ops.dot_attention(query, key, key, window_centers=np.zeros((1, 2)), window=None)
