"""AttentionDecoder over feature maps, with hard attention, Xu et al.'s doubly stochastic
regularisation and the initial state from the mean of the features."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import BahdanauAttention, HardAttention, ops
from keras_seqattn.seq2seq import AttentionDecoder
from tests.harness import run_layer_test

RNG = np.random.default_rng(1)
FEATURES = RNG.normal(size=(3, 2, 3, 4)).astype("float32")  # (batch, H, W, C)
SPATIAL_MASK = np.ones((3, 2, 3), bool)
SPATIAL_MASK[1, 1] = False  # the second image: its bottom row is padding
TARGET = RNG.integers(1, 9, size=(3, 5)).astype("int32")
NEXT = np.concatenate([TARGET[:, 1:], np.full((3, 1), 2)], 1).astype("int32")


def _decoder(sampling="soft", **kwargs):
    return AttentionDecoder(
        keras.layers.LSTMCell(6), BahdanauAttention(5, sampling=sampling), vocabulary_size=9, embedding_dim=4, **kwargs
    )


def test_a_feature_map_equals_its_flattened_positions():
    decoder = _decoder()
    logits, alignments = decoder(TARGET, FEATURES, encoder_mask=SPATIAL_MASK, return_attention_scores=True)
    flat, flat_mask = ops.flatten_feature_map(FEATURES, SPATIAL_MASK)
    flat_logits, flat_alignments = decoder(TARGET, flat, encoder_mask=flat_mask, return_attention_scores=True)
    assert alignments.shape == (3, 5, 2, 3)
    np.testing.assert_allclose(logits, flat_logits, atol=1e-6)
    np.testing.assert_allclose(np.reshape(alignments, (3, 5, 6)), flat_alignments, atol=1e-7)
    assert np.all(np.asarray(alignments)[1, :, 1] == 0)  # padding gets no attention


def test_a_feature_map_in_the_attention_layer():
    attention = BahdanauAttention(5)
    query = RNG.normal(size=(3, 6)).astype("float32")
    context, weights = attention(query, FEATURES, value_mask=SPATIAL_MASK, return_attention_scores=True)
    flat, flat_mask = ops.flatten_feature_map(FEATURES, SPATIAL_MASK)
    flat_context, flat_weights = attention(query, flat, value_mask=flat_mask, return_attention_scores=True)
    assert weights.shape == (3, 2, 3)
    np.testing.assert_allclose(context, flat_context, atol=1e-6)
    np.testing.assert_allclose(np.reshape(weights, (3, 6)), flat_weights, atol=1e-7)


@pytest.mark.parametrize("sampling", ["soft", "hard"])
def test_harness(sampling, tmp_path):
    init = dict(
        cell=keras.layers.GRUCell(6),
        attention=BahdanauAttention(5, sampling=sampling),
        vocabulary_size=9,
        embedding_dim=4,
        doubly_stochastic=0.5,
        initial_state_from_memory=True,
    )
    run_layer_test(
        AttentionDecoder,
        init,
        dict(target_ids=TARGET, encoder_outputs=FEATURES),
        tmp_path=str(tmp_path),
        expected_output_shape=(3, 5, 9),
        mixed_precision=sampling == "soft",
    )


def test_doubly_stochastic_penalty_against_its_formula():
    decoder = _decoder(doubly_stochastic=0.7)
    target = TARGET.copy()
    target[2, 3:] = 0  # padded steps are left out
    _, alignments = decoder(target, FEATURES, encoder_mask=SPATIAL_MASK, return_attention_scores=True)
    coverage = (np.reshape(alignments, (3, 5, 6)) * (target != 0)[..., None]).sum(1)
    mask = SPATIAL_MASK.reshape(3, 6)
    expected = 0.7 * np.mean(np.where(mask, (1 - coverage) ** 2, 0).sum(-1))
    np.testing.assert_allclose(float(decoder.losses[-1]), expected, rtol=1e-5)


def test_initial_state_from_the_mean_of_the_features():
    decoder = _decoder(initial_state_from_memory=True)
    decoder(TARGET, FEATURES, encoder_mask=SPATIAL_MASK)
    state = decoder.initial_state(FEATURES, encoder_mask=SPATIAL_MASK)["cell"]
    flat, mask = FEATURES.reshape(3, 6, 4), SPATIAL_MASK.reshape(3, 6)
    mean = (flat * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    for layer, tensor in zip(decoder.initial_state_layers, state):  # LSTM: h and c, each its own MLP
        np.testing.assert_allclose(tensor, np.tanh(mean @ layer.kernel.numpy() + layer.bias.numpy()), atol=1e-6)
    assert len(decoder.initial_state_layers) == 2


def test_reinforce_adds_the_papers_surrogate_and_trains_the_scores():
    sampler = HardAttention(estimator="reinforce", entropy_weight=0.1, seed=0)
    decoder = _decoder(sampling=sampler)
    with pytest.raises(ValueError, match="targets"):
        decoder(TARGET, FEATURES, training=True)
    with tf.GradientTape() as tape:
        logits = decoder(TARGET, FEATURES, targets=NEXT, training=True)
        surrogate = decoder.losses[-1]
    gradients = tape.gradient(surrogate, decoder.attention.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g)) and np.any(g.numpy() != 0) for g in gradients)
    # Its value: λ_r · mean((L - b) · Σ log p(s)) - λ_e · mean(Σ H), L the targets' NLL, b = 0 at first.
    nll = keras.losses.sparse_categorical_crossentropy(NEXT, logits, from_logits=True).numpy().sum(-1)
    assert float(sampler.baseline.numpy()) == pytest.approx(0.1 * nll.mean(), rel=1e-5)
    assert np.isfinite(float(surrogate))


def test_reinforce_and_straight_through_models_fit():
    for sampler in (HardAttention(estimator="reinforce", seed=0), HardAttention(seed=0)):
        target, features, targets = (
            keras.Input((None,), dtype="int32"),
            keras.Input((2, 3, 4)),
            keras.Input((None,), dtype="int32"),
        )
        decoder = _decoder(sampling=sampler, initial_state_from_memory=True)
        model = keras.Model([target, features, targets], decoder(target, features, targets=targets))
        model.compile(
            keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True
        )
        before = [w.numpy().copy() for w in decoder.attention.trainable_weights]
        history = model.fit([TARGET, FEATURES, NEXT], NEXT, epochs=3, verbose=0).history["loss"]
        assert np.all(np.isfinite(history))
        assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, decoder.attention.trainable_weights))
