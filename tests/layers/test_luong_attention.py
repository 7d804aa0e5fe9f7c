import keras
import numpy as np
import pytest

from keras_seqattn import LuongAttention
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 3, 6)).astype("float32")
VALUE = RNG.normal(size=(4, 9, 6)).astype("float32")
VALUE_MASK = np.arange(9)[None, :] < np.array([9, 5, 3, 8])[:, None]


@pytest.mark.parametrize(
    "init",
    [
        dict(score_mode="general", scale=True),
        dict(score_mode="concat", units=5, window=2, local_mode="predictive"),
    ],
)
def test_harness(init, tmp_path):
    run_layer_test(
        LuongAttention,
        init,
        dict(query=QUERY, value=VALUE, value_mask=VALUE_MASK),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 3, 6),
    )


def _randomize(layer):
    for v in layer.weights:
        v.assign(RNG.normal(size=v.shape).astype("float32"))
    return {v.name: np.asarray(v, np.float64) for v in layer.weights}


def _scores(layer, w, query, key):
    if layer.score_mode == "dot":
        scores = query @ key.transpose(0, 2, 1)
    elif layer.score_mode == "general":  # h_tᵀ W_a h̄_s, W_a stored as (dk, dq)
        scores = np.einsum("btq,kq,bsk->bts", query, w["key_kernel"], key)
    else:  # v_aᵀ tanh(W_a [h_t; h̄_s])
        joint = np.concatenate([w["query_kernel"], w["key_kernel"]], axis=0)
        pairs = np.concatenate(
            [np.repeat(query[:, :, None], key.shape[1], 2), np.repeat(key[:, None], query.shape[1], 1)], axis=-1
        )
        scores = np.tanh(pairs @ joint) @ w["attention_v"]
    return scores * w["attention_g"] if layer.scale else scores


@pytest.mark.parametrize("score_mode", ["dot", "general", "concat"])
@pytest.mark.parametrize("scale", [False, True])
def test_global_scores_against_numpy(score_mode, scale):
    layer = LuongAttention(score_mode, units=4 if score_mode == "concat" else None, scale=scale)
    layer(QUERY, VALUE)
    w = _randomize(layer)
    context, weights = layer(QUERY, VALUE, value_mask=VALUE_MASK, return_attention_scores=True)
    ref_weights = reference.softmax(
        _scores(layer, w, QUERY.astype(np.float64), VALUE.astype(np.float64)), VALUE_MASK[:, None, :]
    )
    np.testing.assert_allclose(weights, ref_weights, atol=1e-5)
    np.testing.assert_allclose(context, ref_weights @ VALUE, atol=1e-4)


def test_general_hand_case():
    # W_a = I: the general score is the dot score; two keys with scores 1 and 0.
    layer = LuongAttention("general")
    layer(np.zeros((1, 1, 2), "float32"), np.zeros((1, 2, 2), "float32"))
    layer.key_kernel.assign(np.eye(2, dtype="float32"))
    weights = layer(
        np.array([[[1.0, 0.0]]], "float32"),
        np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32"),
        return_attention_scores=True,
    )[1]
    np.testing.assert_allclose(weights, [[[np.e / (np.e + 1), 1 / (np.e + 1)]]], rtol=1e-6)


def test_local_monotonic_window_centred_on_the_query_step():
    layer = LuongAttention("dot", window=1, local_mode="aligned")
    weights = np.asarray(layer(QUERY, VALUE, query_offset=2, return_attention_scores=True)[1])
    for t in range(3):
        centre = 2 + t
        allowed = np.abs(np.arange(9) - centre) <= 1
        ref = reference.softmax(QUERY[:, t : t + 1].astype(np.float64) @ VALUE.transpose(0, 2, 1), allowed)
        np.testing.assert_allclose(weights[:, t : t + 1], ref, atol=1e-6)
    step = layer(QUERY[:, 1], VALUE, query_offset=3, return_attention_scores=True)[1]
    np.testing.assert_allclose(step, weights[:, 1], atol=1e-6)


def test_local_predictive_position_and_gaussian():
    layer = LuongAttention("general", window=2, local_mode="predictive")
    layer(QUERY, VALUE)
    w = _randomize(layer)
    weights = np.asarray(layer(QUERY, VALUE, value_mask=VALUE_MASK, return_attention_scores=True)[1])
    q, v = QUERY.astype(np.float64), VALUE.astype(np.float64)
    source_length = VALUE_MASK.sum(-1)[:, None]
    p = source_length / (1 + np.exp(-(np.tanh(q @ w["position_kernel"]) @ w["position_v"])))
    s = np.arange(9)[None, None, :]
    window = (np.abs(s - p[..., None]) <= 2) & VALUE_MASK[:, None, :]
    gauss = np.exp(-((s - p[..., None]) ** 2) / (2 * (2 / 2) ** 2))
    ref = reference.softmax(_scores(layer, w, q, v), window) * gauss
    np.testing.assert_allclose(weights, ref, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_all_masked_source_gives_zero_context(policy):
    mask = VALUE_MASK.copy()
    mask[2] = False
    context = LuongAttention("dot", dtype=policy)(QUERY, VALUE, value_mask=mask)
    context = np.asarray(keras.ops.cast(context, "float32"))
    assert np.all(np.isfinite(context))
    np.testing.assert_array_equal(context[2], 0.0)


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(score_mode="bilinear"), None, "score_mode"),
        (dict(local_mode="gaussian"), None, "local_mode"),
        (dict(units=-2), None, "units"),
        (dict(window=0), None, "window"),
        (dict(dropout=1.5), None, "dropout"),
        (dict(score_mode="dot"), dict(query=QUERY, value=np.ones((4, 9, 5))), "depth"),
        (dict(score_mode="general", units=4), dict(query=QUERY, value=VALUE), "units"),
        (dict(), dict(query=QUERY, value=VALUE[:2]), "batch size"),
        (dict(), dict(query=QUERY, value=VALUE, value_mask=np.ones((4, 9, 1), bool)), "value_mask"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        layer = LuongAttention(**init)
        layer(**{k: v.astype("float32") if v.dtype != bool else v for k, v in call.items()})


def test_the_old_name_of_local_m_still_works_with_a_warning():
    with pytest.warns(DeprecationWarning, match="aligned"):
        layer = LuongAttention("dot", window=1, local_mode="monotonic")
    assert layer.local_mode == "aligned" and layer.get_config()["local_mode"] == "aligned"
