import keras
import numpy as np
import pytest

from keras_seqattn import HierarchicalAttention
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
DOCUMENTS = RNG.normal(size=(3, 4, 5, 6)).astype("float32")  # (batch, sentences, words, d)
WORDS = np.array([[5, 2, 0, 0], [3, 3, 3, 1], [0, 0, 0, 0]])  # words per sentence; 0: a padded sentence
MASK = np.arange(5)[None, None, :] < WORDS[:, :, None]


def _encoder(units):
    return keras.layers.Bidirectional(keras.layers.GRU(units, return_sequences=True))


@pytest.mark.parametrize("with_encoders", [False, True])
def test_harness(with_encoders, tmp_path):
    init = dict(word_units=4, sentence_units=3)
    if with_encoders:
        init.update(word_encoder=_encoder(3), sentence_encoder=_encoder(2))
    run_layer_test(
        HierarchicalAttention,
        init,
        dict(inputs=DOCUMENTS, mask=MASK),
        tmp_path=str(tmp_path),
        expected_output_shape=(3, 4 if with_encoders else 6),
    )


def test_two_levels_of_pooling_against_numpy():
    layer = HierarchicalAttention(word_units=4, sentence_units=3)
    layer(DOCUMENTS)
    for weight in layer.weights:
        weight.assign(RNG.normal(size=weight.shape).astype("float32"))
    document, sentence_weights, word_weights = layer(DOCUMENTS, mask=MASK, return_attention_scores=True)

    def pool(pooling, x, mask):  # e = u_wᵀ tanh(W x + b), masked softmax, Σ α x
        scores = np.tanh(x @ pooling.kernel.numpy() + pooling.bias.numpy()) @ pooling.context.numpy()[:, 0]
        weights = reference.softmax(scores, mask)
        return np.einsum("...t,...td->...d", weights, x), weights

    sentences, expected_word_weights = pool(layer.word_pooling, DOCUMENTS.astype(np.float64), MASK)
    expected, expected_sentence_weights = pool(layer.sentence_pooling, sentences, MASK.any(-1))
    np.testing.assert_allclose(word_weights, expected_word_weights, atol=1e-6)
    np.testing.assert_allclose(sentence_weights, expected_sentence_weights, atol=1e-6)
    np.testing.assert_allclose(document, expected, atol=1e-5)
    assert np.all(np.asarray(word_weights)[~MASK] == 0) and np.all(np.asarray(sentence_weights)[0, 2:] == 0)
    np.testing.assert_array_equal(np.asarray(document)[2], 0.0)  # no word at all: zero


def test_with_encoders_equals_the_levels_composed_by_hand():
    layer = HierarchicalAttention(_encoder(3), _encoder(2), word_units=4, sentence_units=3)
    document, sentence_weights, word_weights = layer(DOCUMENTS, mask=MASK, return_attention_scores=True)
    words = DOCUMENTS.reshape(12, 5, 6)
    hidden = layer.word_encoder(words, mask=MASK.reshape(12, 5))
    sentences, expected_word_weights = layer.word_pooling(
        hidden, mask=MASK.reshape(12, 5), return_attention_scores=True
    )
    hidden = layer.sentence_encoder(np.reshape(sentences, (3, 4, 6)), mask=MASK.any(-1))
    expected, expected_sentence_weights = layer.sentence_pooling(
        hidden, mask=MASK.any(-1), return_attention_scores=True
    )
    np.testing.assert_allclose(document, expected, atol=1e-6)
    np.testing.assert_allclose(sentence_weights, expected_sentence_weights, atol=1e-6)
    np.testing.assert_allclose(word_weights, np.reshape(expected_word_weights, (3, 4, 5)), atol=1e-6)


def test_in_a_model_from_word_ids():
    ids = keras.Input((None, None), dtype="int32")
    embedded = keras.layers.Embedding(20, 6, mask_zero=True)(ids)
    document, sentences, words = HierarchicalAttention(_encoder(3), _encoder(2), 4, 3)(
        embedded, return_attention_scores=True
    )
    model = keras.Model(ids, [keras.layers.Dense(2)(document), sentences, words])
    tokens = np.where(MASK, RNG.integers(1, 20, size=MASK.shape), 0)
    logits, sentences, words = model(tokens)
    assert logits.shape == (3, 2) and sentences.shape == (3, 4) and words.shape == (3, 4, 5)
    assert np.all(np.asarray(words)[~MASK] == 0) and np.all(np.isfinite(logits))


@pytest.mark.parametrize(
    "init, call, argument",
    [
        (dict(word_encoder="gru"), None, "word_encoder"),
        (dict(sentence_encoder=3), None, "sentence_encoder"),
        (dict(word_units=0), None, "word_units"),
        (dict(), dict(inputs=DOCUMENTS[0]), "inputs"),
        (dict(), dict(inputs=DOCUMENTS, mask=MASK[:, :2]), "mask"),
    ],
)
def test_bad_input(init, call, argument):
    with pytest.raises(ValueError, match=argument):
        HierarchicalAttention(**init)(**call)
