"""Hard attention: HardAttention and the `sampling` switch of the attention layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import BahdanauAttention, HardAttention, LuongAttention, ScaledDotProduct, ops
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
QUERY = RNG.normal(size=(4, 3, 6)).astype("float32")
VALUE = RNG.normal(size=(4, 7, 5)).astype("float32")
VALUE_MASK = np.arange(7)[None, :] < np.array([7, 5, 2, 0])[:, None]  # the last row: nothing to attend
WEIGHTS = np.array([0.5, 0.3, 0.15, 0.05, 0.0], "float32")


@pytest.mark.parametrize("estimator", ["straight_through", "reinforce"])
def test_draws_follow_the_weights_and_never_a_masked_position(estimator):
    sampler = HardAttention(estimator=estimator, seed=3)
    draws = sampler(np.tile(WEIGHTS, (20000, 1)), training=True).numpy()
    assert np.all(draws.sum(-1) == 1.0) and set(np.unique(draws)) == {0.0, 1.0}  # exactly one-hot
    np.testing.assert_allclose(draws.mean(0), WEIGHTS, atol=0.01)
    assert draws[:, 4].sum() == 0  # weight 0: never drawn


def test_inference_is_the_argmax_or_the_expectation():
    np.testing.assert_array_equal(HardAttention()(WEIGHTS[None], training=False), [[1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(HardAttention(inference="expectation")(WEIGHTS[None], training=False), [WEIGHTS])
    np.testing.assert_array_equal(HardAttention()(np.zeros((1, 5), "float32"), training=True), np.zeros((1, 5)))


def test_straight_through_gradient_is_the_gumbel_softmax_one():
    scores = tf.Variable(RNG.normal(size=(2, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        positions = ops.straight_through_positions(tf.nn.softmax(scores), temperature=0.5, seed=7)
        loss = tf.reduce_sum(positions * tf.constant([[1.0, 2, 3, 4, 5]]))
    gradient = tape.gradient(loss, scores)
    assert np.all(np.isfinite(gradient)) and np.any(gradient.numpy() != 0)
    np.testing.assert_array_equal(np.sort(positions.numpy(), -1)[:, -1], 1.0)  # forward one-hot
    with tf.GradientTape() as tape:  # a draw without the straight-through path carries no gradient
        loss = tf.reduce_sum(ops.sample_positions(tf.nn.softmax(scores), seed=7) * tf.constant([[1.0, 2, 3, 4, 5]]))
    assert tape.gradient(loss, scores) is None


def test_score_function_loss_and_its_baseline():
    sampler = HardAttention(estimator="reinforce", reward_weight=2.0, entropy_weight=0.5, baseline_decay=0.75)
    log_prob, entropy, loss = np.array([-1.0, -2.0], "float32"), np.array([0.3, 0.5], "float32"), np.array([4.0, 2.0])
    value = sampler.score_function_loss(log_prob, entropy, loss)  # baseline 0 at first
    np.testing.assert_allclose(value, 2.0 * np.mean((loss - 0.0) * log_prob) - 0.5 * np.mean(entropy), rtol=1e-6)
    np.testing.assert_allclose(sampler.baseline.numpy(), 0.25 * 3.0)
    value = sampler.score_function_loss(log_prob, entropy, loss)
    np.testing.assert_allclose(value, 2.0 * np.mean((loss - 0.75) * log_prob) - 0.5 * np.mean(entropy), rtol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: BahdanauAttention(6, sampling=HardAttention(seed=1)),
        lambda: LuongAttention("general", sampling=HardAttention(estimator="reinforce", seed=1)),
    ],
)
def test_score_layers_read_the_drawn_position(layer):
    attention = layer()
    context, weights, positions = attention(
        QUERY, VALUE, value_mask=VALUE_MASK, return_attention_scores=True, training=True
    )
    positions = positions.numpy()
    assert np.all(positions[~np.broadcast_to(VALUE_MASK[:, None], positions.shape)] == 0)
    np.testing.assert_allclose(context, np.einsum("bqs,bsd->bqd", positions, VALUE), atol=1e-6)
    np.testing.assert_array_equal(context[3], 0.0)  # nothing to attend: zero
    np.testing.assert_allclose(np.asarray(weights)[:3].sum(-1), 1.0, atol=1e-5)  # α, the distribution
    inferred = attention(QUERY, VALUE, value_mask=VALUE_MASK, return_attention_scores=True)
    np.testing.assert_array_equal(inferred[2], ops.argmax_positions(inferred[1]))


def test_scaled_dot_product_grouped_heads():
    attention = ScaledDotProduct(sampling=HardAttention(seed=2))
    query, key = RNG.normal(size=(2, 3, 4, 8)).astype("float32"), RNG.normal(size=(2, 5, 2, 8)).astype("float32")
    value = RNG.normal(size=(2, 5, 2, 6)).astype("float32")
    context, weights, positions = attention(query, key, value, return_attention_scores=True, training=True)
    expected = np.einsum("bhts,bshd->bthd", positions.numpy(), np.repeat(value, 2, axis=2))
    np.testing.assert_allclose(context, expected, atol=1e-6)
    assert weights.shape == positions.shape == (2, 4, 3, 5)


@pytest.mark.parametrize(
    "layer_cls, init, inputs",
    [
        (BahdanauAttention, dict(units=6, sampling="hard"), dict(query=QUERY, value=VALUE, value_mask=VALUE_MASK)),
        (
            LuongAttention,
            dict(
                score_mode="concat",
                sampling={
                    "class_name": "HardAttention",
                    "module": None,
                    "registered_name": "keras_seqattn>HardAttention",
                    "config": {"estimator": "straight_through", "temperature": 0.5, "seed": 4},
                },
            ),
            dict(query=QUERY, value=VALUE),
        ),
        (ScaledDotProduct, dict(sampling="hard"), dict(query=QUERY[..., :5], key=VALUE, value=VALUE)),
    ],
)
def test_harness(layer_cls, init, inputs, tmp_path):
    # Hard attention is not continuous in its inputs: mixed precision may pick another argmax.
    run_layer_test(layer_cls, init, inputs, tmp_path=str(tmp_path), mixed_precision=False)


def test_straight_through_trains_the_score_weights_reproducibly():
    def train(seed):
        keras.utils.set_random_seed(0)
        query, value = keras.Input((3, 6)), keras.Input((7, 5))
        attention = BahdanauAttention(6, sampling=HardAttention(temperature=0.5, seed=seed))
        model = keras.Model([query, value], attention(query, value))
        model.compile(keras.optimizers.SGD(0.1), "mse")
        before = [w.numpy().copy() for w in attention.trainable_weights]
        model.fit([QUERY, VALUE], np.ones((4, 3, 5), "float32"), epochs=3, verbose=0)
        after = [w.numpy() for w in attention.trainable_weights]
        assert all(np.all(np.isfinite(w)) and not np.array_equal(b, w) for b, w in zip(before, after))
        return after

    first, again, other = train(5), train(5), train(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))  # the same seed, the same training
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(estimator="gumbel"), "estimator"),
        (dict(temperature=0.0), "temperature"),
        (dict(inference="mean"), "inference"),
        (dict(baseline_decay=1.0), "baseline_decay"),
        (dict(entropy_weight=-1.0), "entropy_weight"),
    ],
)
def test_bad_sampler_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        HardAttention(**kwargs)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: BahdanauAttention(4, sampling="argmax"), "sampling"),
        (lambda: BahdanauAttention(4, sampling="hard", dropout=0.1), "sampling"),
        (lambda: LuongAttention(sampling="hard", monotonic=True), "sampling"),
        (lambda: ScaledDotProduct(sampling="hard", flash_attention=True), "sampling"),
    ],
)
def test_bad_layer_arguments(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_expectation_probability_mixes_in_soft_rows_that_reinforce_ignores():
    sampler = HardAttention(estimator="reinforce", expectation_probability=0.3, seed=9)
    weights = np.tile(WEIGHTS, (4000, 1))
    positions = sampler(weights, training=True).numpy()
    soft = np.all(positions == WEIGHTS, axis=-1)
    assert abs(soft.mean() - 0.3) < 0.03
    assert np.all(positions[~soft].max(-1) == 1.0)  # the others are draws
    log_prob = ops.position_log_prob(weights, positions).numpy()
    assert np.all(log_prob[soft] == 0) and np.all(log_prob[~soft] < 0)
    with pytest.raises(ValueError, match="expectation_probability"):
        HardAttention(expectation_probability=1.5)
