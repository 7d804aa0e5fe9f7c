import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import PositionalEncoding
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
INPUTS = RNG.normal(size=(4, 9, 6)).astype("float32")


@pytest.mark.parametrize("init", [dict(), dict(mode="learned", max_length=16)])
def test_harness(init, tmp_path):
    run_layer_test(
        PositionalEncoding, init, dict(inputs=INPUTS), tmp_path=str(tmp_path), expected_output_shape=(4, 9, 6)
    )


@pytest.mark.parametrize("depth, max_wavelength", [(6, 10000), (7, 100)])
def test_sinusoids_against_the_formula(depth, max_wavelength):
    inputs = RNG.normal(size=(2, 11, depth)).astype("float32")
    out = PositionalEncoding(max_wavelength=max_wavelength)(inputs)
    np.testing.assert_allclose(out, inputs + reference.sinusoids(11, depth, max_wavelength), atol=1e-5)


def test_hand_case_position_one():
    out = PositionalEncoding(max_wavelength=100)(np.zeros((1, 2, 4), "float32"))
    # pos 1: (sin(1), cos(1), sin(1/100^(2/4)), cos(1/10))
    np.testing.assert_allclose(out[0, 1], [np.sin(1), np.cos(1), np.sin(0.1), np.cos(0.1)], atol=1e-6)


def test_same_sinusoids_as_keras_hub():
    zeros = np.zeros((2, 13, 8), "float32")
    np.testing.assert_allclose(PositionalEncoding()(zeros), keras_hub.layers.SinePositionEncoding()(zeros), atol=1e-6)


@pytest.mark.parametrize("init", [dict(), dict(mode="learned", max_length=12)])
def test_step_by_step_equals_the_whole_sequence(init):
    layer = PositionalEncoding(**init)
    whole = layer(INPUTS)
    for t in range(9):
        step = layer(INPUTS[:, t : t + 1], start_index=tf.constant(t))
        np.testing.assert_allclose(step, whole[:, t : t + 1], atol=1e-6)


def test_learned_table_rows_are_added():
    layer = PositionalEncoding("learned", max_length=12)
    out = layer(INPUTS)
    np.testing.assert_allclose(out - INPUTS, np.broadcast_to(layer.position_embeddings[:9], (4, 9, 6)), atol=1e-6)


def test_mask_passes_through():
    tokens = keras.Input((None,), dtype="int32")
    encoded = PositionalEncoding()(keras.layers.Embedding(5, 4, mask_zero=True)(tokens))
    pooled = keras.layers.GlobalAveragePooling1D()(encoded)
    model = keras.Model(tokens, [encoded, pooled])
    encoded, pooled = model(np.array([[1, 2, 0, 0]]))
    np.testing.assert_allclose(pooled[0], np.asarray(encoded)[0, :2].mean(0), atol=1e-6)


def test_too_long_for_a_learned_table_fails_when_the_model_is_built():
    with pytest.raises(ValueError, match="max_length"):
        PositionalEncoding("learned", max_length=4)(keras.Input((9, 6)))


@pytest.mark.parametrize(
    "init, inputs, argument",
    [
        (dict(mode="rotary"), None, "mode"),
        (dict(mode="learned"), None, "max_length"),
        (dict(max_length=0), None, "max_length"),
        (dict(max_wavelength=-1), None, "max_wavelength"),
        (dict(), np.ones((2, 3), "float32"), "inputs"),
        (dict(mode="learned", max_length=8), INPUTS, "max_length"),
        (dict(max_length=8), INPUTS, "max_length"),
    ],
)
def test_bad_input(init, inputs, argument):
    with pytest.raises(ValueError, match=argument):
        PositionalEncoding(**init)(inputs)


def test_a_learned_encoding_takes_exactly_max_length_steps():
    layer = PositionalEncoding(mode="learned", max_length=9)
    assert layer(INPUTS).shape == (4, 9, 6)  # INPUTS has 9 steps
    with pytest.raises(ValueError, match="max_length"):
        PositionalEncoding(mode="learned", max_length=8)(INPUTS)
