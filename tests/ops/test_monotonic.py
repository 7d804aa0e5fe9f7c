import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import BahdanauAttention, LuongAttention
from keras_seqattn.ops import monotonic_alignment
from keras_seqattn.seq2seq import AttentionDecoder
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)


def _recursive(choose, previous):
    """Raffel et al.'s recursion (their eq. 10-11): q_j = (1 - p_{j-1}) q_{j-1} + α_{i-1,j},
    α_{i,j} = p_j q_j, written as the loop it is."""
    alignment = np.zeros_like(choose)
    for b in range(choose.shape[0]):
        q = 0.0
        for j in range(choose.shape[1]):
            q = (1 - choose[b, j - 1]) * q + previous[b, j] if j else previous[b, 0]
            alignment[b, j] = choose[b, j] * q
    return alignment


def _hard_scan(choose, start):
    """Scan from `start` to the first position with p > 0.5 (-1 when none)."""
    return [
        next((j for j in range(s, len(row)) if row[j] > 0.5), -1) if s >= 0 else -1 for row, s in zip(choose, start)
    ]


def test_expected_alignment_equals_the_recursion():
    scores = RNG.normal(size=(4, 9)) * 2
    previous = RNG.dirichlet(np.ones(9), size=4) * 0.9
    choose = 1 / (1 + np.exp(-scores))
    np.testing.assert_allclose(monotonic_alignment(scores, previous), _recursive(choose, previous), atol=1e-6)
    mask = np.arange(9)[None] < np.array([9, 6, 3, 1])[:, None]
    np.testing.assert_allclose(
        monotonic_alignment(scores, previous, mask), _recursive(np.where(mask, choose, 0.0), previous), atol=1e-6
    )


def test_hard_alignment_scans_forward_from_the_previous_position():
    scores = RNG.normal(size=(5, 8)) * 3
    start = np.array([0, 2, 5, 7, -1])
    previous = np.zeros((5, 8))
    previous[np.arange(4), start[:4]] = 1.0  # the last row had already passed the end: all zeros
    alignment = np.asarray(monotonic_alignment(scores, previous, hard=True))
    chosen = _hard_scan(1 / (1 + np.exp(-scores)), start)
    for row, position in enumerate(chosen):
        expected = np.zeros(8)
        if position >= 0:
            expected[position] = 1.0
        np.testing.assert_array_equal(alignment[row], expected)


def test_nearly_binary_probabilities_make_the_expected_alignment_hard():
    scores = np.where(RNG.random((4, 7)) > 0.6, 30.0, -30.0)
    previous = np.eye(7)[[0, 1, 3, 6]]
    np.testing.assert_allclose(
        monotonic_alignment(scores, previous), monotonic_alignment(scores, previous, hard=True), atol=1e-6
    )


@pytest.mark.parametrize(
    "attention",
    [
        lambda: BahdanauAttention(6, normalize=True, monotonic=True, score_bias_init=-1.0),
        lambda: LuongAttention("general", scale=True, monotonic=True),
    ],
)
def test_monotonic_decoder(attention):
    target = RNG.integers(0, 9, size=(3, 6)).astype("int32")
    encoded = RNG.normal(size=(3, 8, 5)).astype("float32")
    mask = np.arange(8)[None] < np.array([8, 5, 2])[:, None]
    decoder = AttentionDecoder(
        keras.layers.GRUCell(5), attention(), vocabulary_size=9, embedding_dim=4, attention_style="luong"
    )
    # Training: expected alignments, differentiable; they never attend to padding.
    with tf.GradientTape() as tape:
        logits, expected = decoder(target, encoded, encoder_mask=mask, return_attention_scores=True, training=True)
        loss = tf.reduce_mean(tf.square(logits))
    gradients = tape.gradient(loss, decoder.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(tf.convert_to_tensor(g))) for g in gradients)
    assert "score_bias" in [w.name for w in decoder.attention.weights]
    expected = np.asarray(expected)
    assert np.all(expected >= 0) and np.all(expected.sum(-1) <= 1 + 1e-5)
    assert np.all(expected[~np.broadcast_to(mask[:, None], expected.shape)] == 0)
    # Inference: hard alignments, one-hot (or empty once past the end) and moving forward only.
    for weight in decoder.attention.weights:  # larger scores: some positions chosen, some passed over
        weight.assign(weight * 10.0 if weight.name != "score_bias" else 0.0)
    _, hard = decoder(target, encoded, encoder_mask=mask, return_attention_scores=True)
    hard = np.asarray(hard)
    assert set(np.unique(hard)) == {0.0, 1.0} and np.all(hard.sum(-1) <= 1)
    positions = np.where(hard.sum(-1) > 0, hard.argmax(-1), 99)
    assert np.all(np.diff(positions, axis=1) >= 0)
    # The decoding step function gives the same hard alignments.
    state = decoder.initial_state(tf.constant(encoded), encoder_mask=tf.constant(mask))
    for t in range(target.shape[1]):
        _, state = decoder.step(tf.constant(target[:, t]), state, t)
        np.testing.assert_array_equal(state["attention"], hard[:, t])


@pytest.mark.parametrize(
    "call, argument",
    [
        (dict(query=np.zeros((2, 3, 4), "float32")), "previous_alignment"),
        (dict(previous_alignment=None), "previous_alignment"),
        (dict(previous_alignment=np.zeros((2, 5), "float32")), "previous_alignment"),
    ],
)
def test_monotonic_bad_input(call, argument):
    layer = BahdanauAttention(4, monotonic=True)
    inputs = dict(
        query=np.zeros((2, 4), "float32"),
        value=np.zeros((2, 6, 3), "float32"),
        previous_alignment=np.eye(6, dtype="float32")[[0, 0]],
    )
    with pytest.raises(ValueError, match=argument):
        layer(**{**inputs, **call})


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(sigmoid_noise=-1.0), "sigmoid_noise"),
        (dict(score_bias_init="low"), "score_bias_init"),
        (dict(dropout=0.1), "dropout"),
    ],
)
def test_monotonic_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        BahdanauAttention(4, monotonic=True, **kwargs)
    with pytest.raises(ValueError, match="window"):
        LuongAttention(monotonic=True, window=2)


@pytest.mark.parametrize(
    "layer_cls, kwargs", [(BahdanauAttention, dict(units=8)), (LuongAttention, dict(score_mode="concat", units=8))]
)
def test_monotonic_harness(layer_cls, kwargs, tmp_path):
    previous = RNG.dirichlet(np.ones(7), size=4).astype("float32")
    run_layer_test(
        layer_cls,
        dict(kwargs, monotonic=True, sigmoid_noise=1.0, score_bias_init=-1.0),
        dict(
            query=RNG.normal(size=(4, 6)).astype("float32"),
            value=RNG.normal(size=(4, 7, 5)).astype("float32"),
            previous_alignment=previous,
        ),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 5),
    )
