import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import greedy_search
from tests.decoding.toy import END, ToyDecoder, search_args


@pytest.mark.parametrize("jit_compile", [True, False])
def test_greedy_equals_a_hand_written_argmax_loop(jit_compile):
    toy, start, max_length = ToyDecoder(seed=1), [3, 1], 8
    sequences, scores, alignments = greedy_search(
        toy.step_fn,
        toy.initial_state(),
        tf.constant(start),
        end_id=END,
        max_length=max_length,
        return_attention_scores=True,
        jit_compile=jit_compile,
    )
    for row in range(2):
        hidden, token = toy.initial_state()["hidden"].numpy()[row], start[row]
        expected_tokens, expected_score = [], 0.0
        for step in range(max_length):
            log_probs, hidden, attention = toy.numpy_step(token, hidden, toy.source_mask[row], step)
            token = int(np.argmax(log_probs))
            expected_tokens.append(token)
            expected_score += log_probs[token]
            np.testing.assert_allclose(alignments[row, step], attention, atol=1e-5)
            if token == END:
                break
        ended = len(expected_tokens)
        assert sequences[row, :ended].numpy().tolist() == expected_tokens
        assert np.all(sequences[row, ended:].numpy() == END)
        assert np.all(alignments[row, ended:].numpy() == 0)
        np.testing.assert_allclose(scores[row], expected_score, rtol=1e-5)


def test_greedy_is_the_first_hypothesis_of_a_beam_of_one():
    from keras_seqattn.decoding import beam_search

    toy = ToyDecoder(seed=2)
    greedy, greedy_scores = greedy_search(
        toy.step_fn, toy.initial_state(), tf.constant([1, 2]), end_id=END, max_length=6
    )
    beam, beam_scores = beam_search(
        toy.step_fn, toy.initial_state(), tf.constant([1, 2]), end_id=END, beam_width=1, max_length=6
    )
    np.testing.assert_array_equal(greedy.numpy(), beam[:, 0].numpy())
    np.testing.assert_allclose(greedy_scores.numpy(), beam_scores[:, 0].numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(max_length=-2), "max_length"),
        (dict(end_id=1.5), "end_id"),
        (dict(start_ids=tf.constant(1)), "start_ids"),
        (dict(return_attention_scores=True), "return_attention_scores"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    args = search_args(**kwargs)
    with pytest.raises(ValueError, match=argument):
        greedy_search(**args)
