import itertools

import keras
import numpy as np
import pytest

from keras_seqattn import MultiHeadAttention
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 5, 6)).astype("float32")
VALUE = RNG.normal(size=(4, 7, 4)).astype("float32")
KEY = RNG.normal(size=(4, 7, 3)).astype("float32")
QUERY_MASK = np.arange(5)[None, :] < np.array([5, 4, 2, 5])[:, None]
VALUE_MASK = np.arange(7)[None, :] < np.array([7, 6, 4, 3])[:, None]
KEY_MASK = np.arange(7)[None, :] < np.array([7, 7, 5, 6])[:, None]
ATTENTION_MASK = RNG.random((4, 5, 7)) > 0.25
ATTENTION_MASK[:, :, 0] = True  # no query loses every key through this mask alone


@pytest.mark.parametrize(
    "init",
    [
        dict(num_heads=2, key_dim=4, dropout=0.1),
        dict(num_heads=4, key_dim=3, num_key_value_heads=2, use_bias=False),
        dict(num_heads=2, key_dim=4, flash_attention=True),
    ],
)
def test_harness(init, tmp_path):
    run_layer_test(
        MultiHeadAttention,
        init,
        dict(query=QUERY, value=VALUE, key=KEY, value_mask=VALUE_MASK),
        call_kwargs=dict(use_causal_mask=True),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 5, 6),
    )


MASK_KINDS = ("query_mask", "value_mask", "key_mask", "attention_mask", "causal")


@pytest.mark.parametrize(
    "kinds", [c for r in range(len(MASK_KINDS) + 1) for c in itertools.combinations(MASK_KINDS, r)]
)
@pytest.mark.parametrize("init", [dict(), dict(use_gate=True, output_shape=(2, 3), value_dim=5)])
def test_drop_in_for_keras_under_every_mask_combination(kinds, init):
    theirs = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, **init)
    ours = MultiHeadAttention(num_heads=3, key_dim=4, **init)
    theirs(QUERY, VALUE, KEY)
    ours(QUERY, VALUE, KEY)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    assert [w.path.split("/", 1)[1] for w in ours.weights] == [w.path.split("/", 1)[1] for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    masks = dict(value_mask=VALUE_MASK, key_mask=KEY_MASK, attention_mask=ATTENTION_MASK)
    kwargs = {k: masks[k] for k in kinds if k in masks}
    their_kwargs = dict(kwargs)
    if "query_mask" in kinds:
        # Keras reads the query mask only from the query's Keras mask; it means this attention mask.
        their_kwargs["attention_mask"] = kwargs.get("attention_mask", True) & QUERY_MASK[:, :, None]
        kwargs["query_mask"] = QUERY_MASK
    causal = "causal" in kinds
    out, scores = ours(QUERY, VALUE, KEY, use_causal_mask=causal, return_attention_scores=True, **kwargs)
    ref_out, ref_scores = theirs(
        QUERY, VALUE, KEY, use_causal_mask=causal, return_attention_scores=True, **their_kwargs
    )
    # Rows with no key left differ by design (zero here, Keras averages every value): compare the others.
    allowed = np.ones((4, 5, 7), bool)
    for name, broadcast in (
        ("query_mask", lambda m: m[:, :, None]),
        ("value_mask", lambda m: m[:, None]),
        ("key_mask", lambda m: m[:, None]),
        ("attention_mask", lambda m: m),
    ):
        if name in kinds:
            allowed &= broadcast(dict(masks, query_mask=QUERY_MASK)[name])
    if causal:
        allowed &= np.tril(np.ones((5, 7), bool))
    live = allowed.any(-1)  # (batch, T)
    np.testing.assert_allclose(np.asarray(out)[live], np.asarray(ref_out)[live], atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(scores).transpose(0, 2, 1, 3)[live], np.asarray(ref_scores).transpose(0, 2, 1, 3)[live], atol=1e-5
    )
    np.testing.assert_array_equal(np.asarray(scores).transpose(0, 2, 1, 3)[~live], 0.0)


def test_grouped_query_attention_matches_keras_and_numpy():
    theirs = keras.layers.GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)
    ours = MultiHeadAttention(num_heads=4, key_dim=4, num_key_value_heads=2)
    theirs(QUERY, VALUE, KEY)
    ours(QUERY, VALUE, KEY)
    ours.set_weights(theirs.get_weights())
    out, scores = ours(
        QUERY, VALUE, KEY, attention_mask=ATTENTION_MASK, use_causal_mask=True, return_attention_scores=True
    )
    ref_out, ref_scores = theirs(
        QUERY, VALUE, KEY, attention_mask=ATTENTION_MASK, use_causal_mask=True, return_attention_scores=True
    )
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    # And from the weights, with the NumPy reference.
    w = [np.asarray(x, np.float64) for x in ours.get_weights()]
    q = np.einsum("btd,dhk->bthk", QUERY, w[0]) + w[1]
    k = np.einsum("bsd,dhk->bshk", KEY, w[2]) + w[3]
    v = np.einsum("bsd,dhk->bshk", VALUE, w[4]) + w[5]
    heads, _ = reference.multi_head_attention(q, k, v, ATTENTION_MASK[:, None], causal=True)
    np.testing.assert_allclose(out, np.einsum("bthk,hkd->btd", heads, w[6]) + w[7], atol=1e-5)


def test_fully_masked_query_is_zero_and_finite_in_mixed_precision():
    for policy in ("mixed_float16", "mixed_bfloat16"):
        layer = MultiHeadAttention(num_heads=2, key_dim=4, use_bias=False, dtype=policy)
        mask = VALUE_MASK.copy()
        mask[3] = False
        out = np.asarray(keras.ops.cast(layer(QUERY, VALUE, value_mask=mask), "float32"))
        assert np.all(np.isfinite(out))
        np.testing.assert_array_equal(out[3], 0.0)


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(num_heads=0, key_dim=4), None, "num_heads"),
        (dict(num_heads=3, key_dim=4, num_key_value_heads=2), None, "num_key_value_heads"),
        (dict(num_heads=2, key_dim=0), None, "key_dim"),
        (dict(num_heads=2, key_dim=4, dropout=1.0), None, "dropout"),
        (dict(num_heads=2, key_dim=4, attention_axes="1"), None, "attention_axes"),
        (dict(num_heads=2, key_dim=4, attention_axes=(1, 2)), dict(query=QUERY, value=VALUE), "attention_axes"),
        (
            dict(num_heads=2, key_dim=4, attention_axes=(1, 1)),
            dict(query=QUERY[:, :, None], value=VALUE[:, :, None]),
            "attention_axes",
        ),
        (dict(num_heads=2, key_dim=4, output_shape=8.0), None, "output_shape"),
        (dict(num_heads=2, key_dim=4, output_shape=(8, 0)), None, "output_shape"),
        (dict(num_heads=2, key_dim=4), dict(query=QUERY[0], value=VALUE), "query"),
        (dict(num_heads=2, key_dim=4), dict(query=QUERY, value=VALUE[:2]), "batch size"),
        (dict(num_heads=2, key_dim=4), dict(query=QUERY, value=VALUE, key=KEY[:, :6]), "`value` and `key`"),
        (dict(num_heads=2, key_dim=4), dict(query=QUERY[:, :, None], value=VALUE), "same rank"),
        (
            dict(num_heads=2, key_dim=4),
            dict(query=QUERY, value=VALUE, attention_mask=np.ones((4, 1, 2, 5, 7), bool)),
            "attention_mask",
        ),
        (
            dict(num_heads=2, key_dim=4),
            dict(query=QUERY, value=VALUE, attention_mask=np.ones((4, 3, 5, 7), bool)),
            "attention_mask",
        ),
        (
            dict(num_heads=2, key_dim=4),
            dict(query=QUERY, value=VALUE, attention_mask=np.ones((4, 7, 5), bool)),
            "attention_mask",
        ),
        (dict(num_heads=2, key_dim=4), dict(query=QUERY, value=VALUE, value_mask=np.ones((4, 5), bool)), "value_mask"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        layer = MultiHeadAttention(**init)
        layer(**call)


def test_output_shape_and_spec():
    layer = MultiHeadAttention(num_heads=2, key_dim=4, output_shape=(3, 2))
    assert layer.compute_output_shape((7, 4, 8), (7, 2, 8)) == (7, 4, 3, 2)
    assert MultiHeadAttention(2, 4).compute_output_shape((7, 4, 8), (7, 2, 8)) == (7, 4, 8)
    query, value = keras.KerasTensor((7, 4, 8)), keras.KerasTensor((7, 2, 6))
    out, scores = layer.compute_output_spec(query, value, return_attention_scores=True)
    assert out.shape == (7, 4, 3, 2) and scores.shape == (7, 2, 4, 2)
    eager_out, eager_scores = layer(
        np.ones((7, 4, 8), "float32"), np.ones((7, 2, 6), "float32"), return_attention_scores=True
    )
    assert eager_out.shape == out.shape and eager_scores.shape == scores.shape


def test_rank_five_inputs_attend_over_one_axis_as_numpy():
    # (batch, d1, d2, d3, dim) attending over d2: d1 and d3 act as batch axes (keras fails on this case).
    query = RNG.normal(size=(2, 3, 4, 2, 6)).astype("float32")
    value = RNG.normal(size=(2, 3, 5, 2, 6)).astype("float32")
    layer = MultiHeadAttention(num_heads=2, key_dim=3, attention_axes=2)
    out, scores = layer(query, value, return_attention_scores=True)
    assert out.shape == query.shape and scores.shape == (2, 3, 2, 2, 4, 5)
    project = lambda dense, x: np.einsum("...x,xhd->...hd", x, dense.kernel.numpy()) + dense.bias.numpy()
    q, k, v = project(layer.query_dense, query), project(layer.key_dense, value), project(layer.value_dense, value)
    # (batch, d1, d2, d3, heads, d) -> (batch·d1·d3, d2, heads, d)
    to_seq = lambda x: np.transpose(x, (0, 1, 3, 2, 4, 5)).reshape(-1, x.shape[2], *x.shape[4:])
    ref, ref_weights = reference.multi_head_attention(to_seq(q), to_seq(k), to_seq(v))
    ref = np.transpose(ref.reshape(2, 3, 2, 4, 2, 3), (0, 1, 3, 2, 4, 5))
    ref_out = np.einsum("...hd,hdo->...o", ref, layer.output_dense.kernel.numpy()) + layer.output_dense.bias.numpy()
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(scores, ref_weights.reshape(2, 3, 2, 2, 4, 5), atol=1e-6)


def test_a_subclass_overriding_compute_attention_is_used():
    calls = []

    class Doubled(MultiHeadAttention):
        def _compute_attention(
            self, query, key, value, attention_mask=None, training=None, return_attention_scores=False
        ):
            calls.append(None if attention_mask is None else tuple(attention_mask.shape))
            output, scores = super()._compute_attention(
                query, key, value, attention_mask, training, return_attention_scores
            )
            return 2.0 * output, scores

    plain, doubled = MultiHeadAttention(2, 4, use_bias=False), Doubled(2, 4, use_bias=False)
    plain(QUERY, VALUE)
    doubled(QUERY, VALUE)
    doubled.set_weights(plain.get_weights())
    np.testing.assert_allclose(
        doubled(QUERY, VALUE, use_causal_mask=True), 2.0 * plain(QUERY, VALUE, use_causal_mask=True), atol=1e-5
    )
    assert calls[-1] == (1, 1, 5, 7)  # the causal mask is merged in for a subclass's hook
