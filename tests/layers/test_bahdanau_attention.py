import keras
import numpy as np
import pytest

from keras_seqattn import BahdanauAttention, LuongAttention
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 3, 6)).astype("float32")
VALUE = RNG.normal(size=(4, 7, 5)).astype("float32")
VALUE_MASK = np.arange(7)[None, :] < np.array([7, 5, 2, 6])[:, None]


@pytest.mark.parametrize("normalize", [False, True])
def test_harness(normalize, tmp_path):
    run_layer_test(
        BahdanauAttention,
        dict(units=8, normalize=normalize),
        dict(query=QUERY, value=VALUE, value_mask=VALUE_MASK),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 3, 5),
    )


def _reference(layer, query, value, key, mask):
    w = {v.name: np.asarray(v, np.float64) for v in layer.weights}
    v, bias = w["attention_v"], None
    if layer.normalize:
        v, bias = w["attention_g"] * v / np.linalg.norm(v), w["attention_b"]
    scores = reference.additive_scores(query @ w["query_kernel"], key @ w["key_kernel"], v, bias)
    weights = reference.softmax(scores, mask[:, None, :])
    return weights @ value, weights


@pytest.mark.parametrize("normalize", [False, True])
def test_numerics_against_numpy(normalize):
    key = RNG.normal(size=(4, 7, 3)).astype("float32")
    layer = BahdanauAttention(units=8, normalize=normalize)
    layer(QUERY, VALUE, key)
    for v in layer.weights:  # move g and b away from their initial values
        v.assign(RNG.normal(size=v.shape).astype("float32"))
    context, weights = layer(QUERY, VALUE, key, value_mask=VALUE_MASK, return_attention_scores=True)
    ref_context, ref_weights = _reference(layer, QUERY, VALUE, key, VALUE_MASK)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(context, ref_context, atol=1e-5)


def test_single_step_with_projected_key_equals_the_full_call():
    layer = BahdanauAttention(units=8)
    context, weights = layer(QUERY, VALUE, value_mask=VALUE_MASK, return_attention_scores=True)
    keys = layer.project_key(VALUE)
    for t in range(3):
        step, step_weights = layer(
            QUERY[:, t], VALUE, value_mask=VALUE_MASK, projected_key=keys, return_attention_scores=True
        )
        assert step.shape == (4, 5) and step_weights.shape == (4, 7)
        np.testing.assert_allclose(step, context[:, t], atol=1e-6)
        np.testing.assert_allclose(step_weights, weights[:, t], atol=1e-6)


def test_implicit_keras_mask_and_explicit_override():
    tokens = np.array([[3, 4, 0, 0], [5, 6, 7, 0]])
    embed = keras.layers.Embedding(10, 6, mask_zero=True)
    query_in, value_in = keras.Input((None, 6)), keras.Input((None,), dtype="int32")
    context, weights = BahdanauAttention(4)(query_in, embed(value_in), return_attention_scores=True)
    model = keras.Model([query_in, value_in], weights)
    implicit = np.asarray(model([QUERY[:2], tokens]))
    np.testing.assert_array_equal(implicit[tokens[:, None, :].repeat(3, 1) == 0], 0.0)
    np.testing.assert_allclose(implicit.sum(-1), 1.0, atol=1e-6)
    layer = model.layers[-1]
    override = np.array([[True, False, True, True], [True, True, True, True]])
    explicit = layer(QUERY[:2], embed(tokens), value_mask=override, return_attention_scores=True)[1]
    np.testing.assert_array_equal(np.asarray(explicit)[:, :, 1][0], 0.0)
    assert np.all(np.asarray(explicit)[0, :, 2] > 0)  # padded in the implicit mask, allowed here


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_all_masked_source_gives_zero_context(policy):
    layer = BahdanauAttention(units=8, dtype=policy)
    mask = VALUE_MASK.copy()
    mask[1] = False
    context = np.asarray(keras.ops.cast(layer(QUERY, VALUE, value_mask=mask), "float32"))
    assert np.all(np.isfinite(context))
    np.testing.assert_array_equal(context[1], 0.0)


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(units=0), None, "units"),
        (dict(units=4, dropout=1.0), None, "dropout"),
        (dict(units=4, dropout=-0.1), None, "dropout"),
        (dict(units=4), dict(query=np.ones((2, 3, 4, 5)), value=VALUE[:2]), "query"),
        (dict(units=4), dict(query=QUERY[:2], value=np.ones((2, 7))), "value"),
        (dict(units=4), dict(query=QUERY[:3], value=VALUE[:2]), "batch size"),
        (dict(units=4), dict(query=QUERY[:2], value=VALUE[:2], value_mask=np.ones((2, 6), bool)), "value_mask"),
        (dict(units=4), dict(query=QUERY[:2], value=VALUE[:2], key=np.ones((2, 6, 3))), "sequence length"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        layer = BahdanauAttention(**init)
        layer(**{k: v.astype("float32") if v.dtype != bool else v for k, v in call.items()})


def test_project_key_before_build_raises():
    with pytest.raises(ValueError, match="build"):
        BahdanauAttention(4).project_key(VALUE)


@pytest.mark.parametrize(
    "make",
    [
        lambda rate: BahdanauAttention(6, dropout=rate, seed=1),
        lambda rate: LuongAttention("general", dropout=rate, seed=1),
    ],
)
def test_dropout_applies_only_while_training(make):
    query, value = RNG.normal(size=(3, 4, 5)).astype("float32"), RNG.normal(size=(3, 7, 5)).astype("float32")
    dropping, plain = make(0.5), make(0.0)
    plain(query, value)
    dropping(query, value)
    dropping.set_weights(plain.get_weights())
    expected = plain(query, value, return_attention_scores=True)
    for training in (None, False):
        for got, want in zip(dropping(query, value, training=training, return_attention_scores=True), expected):
            np.testing.assert_array_equal(got, want)
    trained = dropping(query, value, training=True)
    assert not np.allclose(trained, expected[0], atol=1e-3)
