import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import greedy_search, sample_search
from tests.decoding.toy import END, VOCAB, ToyDecoder, search_args

ROWS = 4000  # draws per distribution test: a frequency's standard deviation is at most 0.008


def tiled(toy, rows):
    """The toy's initial state and start tokens, input 0 repeated `rows` times."""
    state = {name: tf.repeat(x[:1], rows, axis=0) for name, x in toy.initial_state().items()}
    return state, tf.fill([rows], 3)


def first_token_probabilities(toy, temperature, top_k):
    """NumPy: the distribution the first token is drawn from, for input 0 and start token 3."""
    log_probs, _, _ = toy.numpy_step(3, toy.initial_state()["hidden"].numpy()[0], toy.source_mask[0], 0)
    logits = log_probs / temperature
    if top_k is not None:
        logits = np.where(logits >= np.sort(logits)[-top_k], logits, -np.inf)
    probs = np.exp(logits - logits.max())
    return probs / probs.sum()


@pytest.mark.parametrize("jit_compile", [True, False])
def test_scores_and_alignments_are_the_models_along_the_drawn_tokens(jit_compile):
    toy, start, max_length = ToyDecoder(seed=1), [3, 1], 8
    sequences, scores, alignments = sample_search(
        toy.step_fn,
        toy.initial_state(),
        tf.constant(start),
        end_id=END,
        max_length=max_length,
        temperature=1.5,
        top_k=3,
        seed=11,
        return_attention_scores=True,
        jit_compile=jit_compile,
    )
    for row in range(2):
        hidden, token, expected_score = toy.initial_state()["hidden"].numpy()[row], start[row], 0.0
        for step in range(max_length):
            log_probs, hidden, attention = toy.numpy_step(token, hidden, toy.source_mask[row], step)
            token = int(sequences[row, step])
            assert token in np.argsort(log_probs)[-3:]  # among the top 3
            expected_score += log_probs[token]  # the model's own log-probability
            np.testing.assert_allclose(alignments[row, step], attention, atol=1e-5)
            if token == END:
                break
        assert np.all(sequences[row, step + 1 :].numpy() == END)
        assert np.all(alignments[row, step + 1 :].numpy() == 0)
        np.testing.assert_allclose(scores[row], expected_score, rtol=1e-5)


@pytest.mark.parametrize("temperature, top_k", [(1.0, None), (0.5, None), (2.0, 2)])
def test_first_tokens_follow_the_tempered_top_k_distribution(temperature, top_k):
    toy = ToyDecoder(seed=3)
    state, start = tiled(toy, ROWS)
    sequences, _ = sample_search(
        toy.step_fn, state, start, end_id=END, max_length=1, temperature=temperature, top_k=top_k, seed=5
    )
    frequencies = np.bincount(sequences[:, 0].numpy(), minlength=VOCAB) / ROWS
    expected = first_token_probabilities(toy, temperature, top_k)
    np.testing.assert_allclose(frequencies, expected, atol=0.04)
    if top_k is not None:
        assert np.all(frequencies[expected == 0] == 0)


def test_a_seed_repeats_its_draws_and_other_seeds_differ():
    toy = ToyDecoder(seed=4)
    state, start = tiled(toy, 64)

    def draw(seed):
        return sample_search(toy.step_fn, state, start, end_id=END, max_length=6, seed=seed)[0].numpy()

    np.testing.assert_array_equal(draw(1), draw(1))
    assert not np.array_equal(draw(1), draw(2))
    assert not np.array_equal(draw(None), draw(None))


def test_top_k_of_one_is_greedy_search():
    toy = ToyDecoder(seed=2)
    greedy, greedy_scores = greedy_search(
        toy.step_fn, toy.initial_state(), tf.constant([1, 2]), end_id=END, max_length=6
    )
    sampled, sampled_scores = sample_search(
        toy.step_fn, toy.initial_state(), tf.constant([1, 2]), end_id=END, max_length=6, temperature=3.0, top_k=1
    )
    np.testing.assert_array_equal(greedy.numpy(), sampled.numpy())
    np.testing.assert_allclose(greedy_scores.numpy(), sampled_scores.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(temperature="hot"), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=1.5), "top_k"),
        (dict(top_k=4), "top_k"),  # the vocabulary has 3 tokens
        (dict(seed=-1), "seed"),
        (dict(seed="x"), "seed"),
        (dict(max_length=0), "max_length"),
        (dict(return_attention_scores=True), "return_attention_scores"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    args = search_args(**kwargs)
    with pytest.raises(ValueError, match=argument):
        sample_search(**args)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_consecutive_draws_are_independent(jit_compile):
    # Equal logits over 3 tokens (none of them the end): the second token equals the first in about
    # 1/3 of the rows; drawing every step with the same seed would make them always equal.
    rows = 3000

    def uniform(token_ids, state, step):
        return tf.zeros([tf.shape(token_ids)[0], 4]) + tf.one_hot(3, 4) * -1e9, state  # token 3 ends

    sequences, _ = sample_search(
        uniform, {}, tf.zeros([rows], tf.int32), end_id=3, max_length=2, seed=11, jit_compile=jit_compile
    )
    same = np.mean(sequences[:, 0].numpy() == sequences[:, 1].numpy())
    assert abs(same - 1 / 3) < 0.04, same
