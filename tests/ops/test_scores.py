import numpy as np

from keras_seqattn import ops
from tests import reference


def test_dot_score_hand_case():
    query = np.array([[[1.0, 2.0]]], "float32")
    key = np.array([[[3.0, 4.0], [-1.0, 0.5]]], "float32")
    np.testing.assert_allclose(ops.dot_score(query, key), [[[11.0, 0.0]]])
    np.testing.assert_allclose(ops.dot_score(query, key, scale=0.5), [[[5.5, 0.0]]])


def test_additive_score_hand_case():
    query = np.array([[[0.5, 0.0]]], "float32")
    key = np.array([[[0.0, 1.0]]], "float32")
    v = np.array([2.0, -1.0], "float32")
    bias = np.array([0.0, 0.5], "float32")
    expected = 2 * np.tanh(0.5) - np.tanh(1.5)
    np.testing.assert_allclose(ops.additive_score(query, key, v, bias), [[[expected]]], atol=1e-6)


def test_additive_score_against_reference():
    rng = np.random.default_rng(1)
    query, key = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    v = rng.normal(size=4)
    got = ops.additive_score(query.astype("float32"), key.astype("float32"), v.astype("float32"))
    np.testing.assert_allclose(got, reference.additive_scores(query, key, v), atol=1e-5)
