import keras
import numpy as np
import pytest

from keras_seqattn import AttentionPooling
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
INPUTS = RNG.normal(size=(4, 7, 5)).astype("float32")
MASK = np.arange(7)[None, :] < np.array([7, 3, 1, 0])[:, None]  # the last sequence is all padding


@pytest.mark.parametrize("init", [dict(units=6), dict(), dict(units=6, heads=3, use_bias=False, penalty=0.1)])
def test_harness(init, tmp_path):
    heads = init.get("heads", 1)
    run_layer_test(
        AttentionPooling,
        init,
        dict(inputs=INPUTS, mask=MASK),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 5) if heads == 1 else (4, heads, 5),
    )


def _reference(layer, inputs, mask):
    """NumPy, from the equations: e = u_wᵀ tanh(W h + b) (or u_wᵀ h + b), masked softmax, Σ α h."""
    h = inputs.astype(np.float64)
    if layer.units is not None:
        hidden = h @ layer.kernel.numpy()
        hidden = np.tanh(hidden + layer.bias.numpy() if layer.use_bias else hidden)
        scores = np.einsum("btu,uh->bht", hidden, layer.context.numpy())
    else:
        scores = np.einsum("btd,dh->bht", h, layer.context.numpy())
        if layer.use_bias:
            scores = scores + layer.bias.numpy()[None, :, None]
    weights = reference.softmax(scores, mask[:, None, :])
    return np.einsum("bht,btd->bhd", weights, h), weights


@pytest.mark.parametrize("init", [dict(units=6), dict(), dict(units=4, heads=3), dict(heads=2, use_bias=False)])
def test_against_numpy(init):
    layer = AttentionPooling(**init)
    layer(INPUTS)
    for weight in layer.weights:  # biases away from zero
        weight.assign(RNG.normal(size=weight.shape).astype("float32"))
    pooled, weights = layer(INPUTS, mask=MASK, return_attention_scores=True)
    expected, expected_weights = _reference(layer, INPUTS, MASK)
    if layer.heads == 1:
        expected, expected_weights = expected[:, 0], expected_weights[:, 0]
    np.testing.assert_allclose(pooled, expected, atol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    weights = np.asarray(weights).reshape(4, -1, 7)
    assert np.all(weights[~np.broadcast_to(MASK[:, None], weights.shape)] == 0.0)  # exactly zero
    np.testing.assert_array_equal(np.asarray(pooled)[3], 0.0)  # all padding: zero


def test_implicit_mask_and_a_lone_step():
    tokens = np.array([[3, 0, 0], [4, 5, 6]])
    embedded = keras.layers.Embedding(8, 5, mask_zero=True)(tokens)
    pooled, weights = AttentionPooling(4)(embedded, return_attention_scores=True)
    np.testing.assert_allclose(weights[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(pooled[0], embedded[0, 0], atol=1e-6)


def test_penalty_is_lins_redundancy_term():
    layer = AttentionPooling(units=4, heads=3, penalty=0.5)
    _, weights = layer(INPUTS[:3], mask=MASK[:3], return_attention_scores=True)
    a = np.asarray(weights, np.float64)
    expected = 0.5 * np.mean([np.sum((x @ x.T - np.eye(3)) ** 2) for x in a])
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
    assert AttentionPooling(units=4, heads=3)(INPUTS) is not None and not AttentionPooling(units=4).losses


def test_the_penalty_trains_heads_apart():
    inputs = keras.Input((7, 5))
    pooled = AttentionPooling(units=8, heads=4, penalty=1.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(pooled)))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    history = model.fit(INPUTS, np.zeros((4, 1)), epochs=30, verbose=0).history["loss"]
    assert history[-1] < 0.5 * history[0]  # the loss includes the penalty, which falls


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(units=0), None, "units"),
        (dict(heads=0), None, "heads"),
        (dict(penalty=-1.0), None, "penalty"),
        (dict(), dict(inputs=INPUTS[0]), "inputs"),
        (dict(), dict(inputs=INPUTS, mask=MASK[:, :3]), "mask"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        AttentionPooling(**init)(**call)
