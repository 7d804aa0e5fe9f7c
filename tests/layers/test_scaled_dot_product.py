import itertools

import keras
import numpy as np
import pytest

from keras_seqattn import ScaledDotProduct
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 5, 8)).astype("float32")
KEY = RNG.normal(size=(4, 6, 8)).astype("float32")
VALUE = RNG.normal(size=(4, 6, 3)).astype("float32")
QUERY_MASK = np.arange(5)[None, :] < np.array([5, 4, 2, 5])[:, None]
KEY_MASK = np.arange(6)[None, :] < np.array([6, 3, 6, 5])[:, None]
VALUE_MASK = np.arange(6)[None, :] < np.array([6, 6, 4, 4])[:, None]
ATTENTION_MASK = RNG.random((4, 5, 6)) > 0.25


def test_harness(tmp_path):
    run_layer_test(
        ScaledDotProduct,
        dict(dropout=0.1),
        dict(query=QUERY, key=KEY, value=VALUE, value_mask=VALUE_MASK),
        call_kwargs=dict(use_causal_mask=True),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 5, 3),
    )


MASK_KINDS = ("query_mask", "key_mask", "value_mask", "mask", "causal")


@pytest.mark.parametrize(
    "kinds", [c for r in range(len(MASK_KINDS) + 1) for c in itertools.combinations(MASK_KINDS, r)]
)
def test_every_mask_combination_against_numpy(kinds):
    given = dict(query_mask=QUERY_MASK, key_mask=KEY_MASK, value_mask=VALUE_MASK, mask=ATTENTION_MASK)
    kwargs = {k: given[k] for k in kinds if k != "causal"}
    out, weights = ScaledDotProduct()(
        QUERY, KEY, VALUE, use_causal_mask="causal" in kinds, return_attention_scores=True, **kwargs
    )
    combined = np.ones((4, 5, 6), bool)
    if "query_mask" in kinds:
        combined &= QUERY_MASK[:, :, None]
    for name in ("key_mask", "value_mask"):
        if name in kinds:
            combined &= given[name][:, None, :]
    if "mask" in kinds:
        combined &= ATTENTION_MASK
    ref_out, ref_weights = reference.attention(QUERY, KEY, VALUE, combined, causal="causal" in kinds)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)


def test_multi_head_inputs_with_a_padding_mask_and_a_head_mask():
    query, key, value = (RNG.normal(size=s).astype("float32") for s in ((2, 5, 4, 8), (2, 6, 2, 8), (2, 6, 2, 3)))
    head_mask = RNG.random((2, 4, 5, 6)) > 0.3
    out, weights = ScaledDotProduct(scale=0.5)(
        query, key, value, value_mask=VALUE_MASK[:2], mask=head_mask, return_attention_scores=True
    )
    combined = head_mask & VALUE_MASK[:2, None, None, :]
    ref_out, ref_weights = reference.multi_head_attention(query, key, value, combined, scale=0.5)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)


def test_implicit_mask_from_embedding_propagates():
    tokens = np.array([[1, 2, 0], [3, 0, 0]])
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(5, 4, mask_zero=True)(inputs)
    attended = ScaledDotProduct()(embedded, embedded, embedded)
    pooled = keras.layers.GlobalAveragePooling1D()(attended)  # uses the propagated mask
    model = keras.Model(inputs, [attended, pooled])
    attended, pooled = (np.asarray(x) for x in model(tokens))
    np.testing.assert_array_equal(attended[tokens == 0], 0.0)
    np.testing.assert_allclose(pooled[1], attended[1, 0], atol=1e-6)


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(dropout=1.0), None, "dropout"),
        (dict(scale="x"), None, "scale"),
        (dict(), dict(query=np.ones((4, 5)), key=KEY, value=VALUE), "query"),
        (dict(), dict(query=QUERY, key=KEY[:3], value=VALUE[:3]), "batch size"),
        (dict(), dict(query=QUERY, key=np.ones((4, 6, 7)), value=VALUE), "depth"),
        (dict(), dict(query=QUERY, key=KEY, value=VALUE, mask=np.ones((4, 5, 7), bool)), "mask"),
        (dict(), dict(query=QUERY, key=KEY, value=VALUE, key_mask=np.ones((4, 7), bool)), "key_mask"),
        (dict(), dict(query=QUERY, key=KEY, value=VALUE, query_mask=np.ones((4, 6), bool)), "query_mask"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        layer = ScaledDotProduct(**init)
        layer(**{k: v.astype("float32") if v.dtype != bool else v for k, v in call.items()})
