import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import BeamSampler, beam_search
from tests.decoding.toy import END, ToyDecoder, search_args

START = tf.constant([1, 2])


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.0), (0.8, 0.0), (0.8, 0.5)])
def test_a_beam_as_wide_as_the_search_space_finds_the_exhaustive_ranking(alpha, beta):
    toy, max_length = ToyDecoder(), 4
    # 3^4 unfinished + 1 + 3 + 9 + 27 finished hypotheses: 121 in all.
    sequences, scores = beam_search(
        toy.step_fn,
        toy.initial_state(),
        START,
        end_id=END,
        beam_width=121,
        max_length=max_length,
        length_penalty=alpha,
        coverage_penalty=beta,
    )
    for row in range(2):
        expected_sequences, expected_scores = toy.hypotheses(row, int(START[row]), max_length, alpha, beta)
        assert len(expected_scores) == 121
        np.testing.assert_array_equal(sequences[row].numpy(), expected_sequences)
        np.testing.assert_allclose(scores[row].numpy(), expected_scores, rtol=1e-5, atol=1e-5)


def test_a_narrow_beam_returns_hypotheses_best_first_with_their_true_scores():
    toy, max_length = ToyDecoder(seed=3), 6
    sequences, scores, alignments = beam_search(
        toy.step_fn,
        toy.initial_state(),
        START,
        end_id=END,
        beam_width=3,
        max_length=max_length,
        return_attention_scores=True,
    )
    for row in range(2):
        assert np.all(np.diff(scores[row].numpy()) <= 0)
        for beam in range(3):
            tokens = sequences[row, beam].numpy()
            log_prob, hidden, previous = 0.0, toy.initial_state()["hidden"].numpy()[row], int(START[row])
            for step, token in enumerate(tokens):
                log_probs, hidden, attention = toy.numpy_step(previous, hidden, toy.source_mask[row], step)
                np.testing.assert_allclose(alignments[row, beam, step], attention, atol=1e-5)
                log_prob += log_probs[token]
                previous = token
                if token == END:
                    assert np.all(tokens[step:] == END)
                    assert np.all(alignments[row, beam, step + 1 :].numpy() == 0)
                    break
            np.testing.assert_allclose(scores[row, beam], log_prob, rtol=1e-5)


def test_finished_hypotheses_are_never_extended():
    # A bigram model that, after the end token, strongly prefers to go on (token 1).
    table = np.log(
        np.array(
            [[0.01, 0.97, 0.01, 0.01], [0.40, 0.20, 0.20, 0.20], [0.30, 0.30, 0.20, 0.20], [0.25, 0.25, 0.25, 0.25]],
            "float32",
        )
    )

    def step_fn(token_ids, state, step):
        return tf.gather(table, token_ids), state

    sequences, scores = beam_search(
        step_fn, {}, tf.constant([2]), end_id=END, beam_width=4, max_length=5, jit_compile=False
    )
    for beam in range(4):
        tokens = sequences[0, beam].numpy()
        ended = list(tokens).index(END) if END in tokens else len(tokens)
        assert np.all(tokens[ended:] == END)
        expected = sum(table[a, b] for a, b in zip([2] + list(tokens[:ended]), tokens[: ended + 1]))
        np.testing.assert_allclose(scores[0, beam], expected, rtol=1e-6)
    assert sequences[0, 0].numpy().tolist() == [0, 0, 0, 0, 0]  # the best is to stop at once


def test_search_stops_when_every_hypothesis_has_ended():
    executed = tf.Variable(0)

    def step_fn(token_ids, state, step):
        executed.assign_add(1)
        return tf.one_hot(tf.fill(tf.shape(token_ids), END), 3) * 10.0, state

    sequences, _ = beam_search(
        step_fn, {}, tf.constant([1, 1]), end_id=END, beam_width=2, max_length=50, jit_compile=False
    )
    assert sequences.shape == (2, 2, 50)
    assert np.all(sequences[:, 0].numpy() == END) and np.all(sequences[:, 1, 1:].numpy() == END)
    # Step 0 keeps "end" and the runner-up token; step 1 ends the runner-up; nothing runs after.
    assert int(executed.numpy()) == 2


def test_runs_as_one_xla_compiled_while_loop():
    toy = ToyDecoder()
    search = tf.function(
        lambda start: beam_search(toy.step_fn, toy.initial_state(), start, end_id=END, beam_width=2, max_length=3)
    )
    graph = search.get_concrete_function(tf.TensorSpec([None], tf.int32)).graph.as_graph_def()
    compiled = [f for f in graph.library.function if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b]
    assert len(compiled) == 1
    assert [n.op for n in compiled[0].node_def].count("StatelessWhile") + [n.op for n in compiled[0].node_def].count(
        "While"
    ) == 1


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(beam_width=0), "beam_width"),
        (dict(beam_width=2.0), "beam_width"),
        (dict(max_length=0), "max_length"),
        (dict(end_id=-1), "end_id"),
        (dict(length_penalty=-0.1), "length_penalty"),
        (dict(coverage_penalty=-1.0), "coverage_penalty"),
        (dict(ranking="tfa"), "ranking"),
        (dict(start_ids=tf.constant([[1]])), "start_ids"),
        (dict(coverage_penalty=0.5, initial_state={"hidden": tf.zeros([1, 2])}), "coverage_penalty"),
        (dict(return_attention_scores=True, initial_state=(tf.zeros([1, 2]),)), "return_attention_scores"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    args = search_args(**{"beam_width": 2, **kwargs})
    with pytest.raises(ValueError, match=argument):
        beam_search(**args)


def test_eager_calls_with_the_same_step_function_trace_once():
    toy = ToyDecoder()
    for batch_start in ([1, 2], [3, 1], [2, 2]):
        beam_search(toy.step_fn, toy.initial_state(), tf.constant(batch_start), end_id=END, beam_width=2, max_length=3)
    options = tuple(sorted(dict(end_id=END, max_length=3, return_attention_scores=False, stop_ids=(END,)).items()))
    search, _ = BeamSampler(2)._compiled(toy.step_fn, None, options, True)
    assert search.experimental_get_tracing_count() == 1


def test_the_compiled_search_does_not_keep_its_model_alive():
    toy = ToyDecoder()
    beam_search(toy.step_fn, toy.initial_state(), START, end_id=END, beam_width=2, max_length=3)
    alive = weakref.ref(toy)
    del toy
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("ranking", ["gnmt", "tensorflow_addons"])
def test_both_rankings_equal_a_numpy_replay_of_their_rules(ranking):
    other = "gnmt" if ranking == "tensorflow_addons" else "tensorflow_addons"
    differs = 0
    for seed in range(6):
        toy = ToyDecoder(seed)
        for alpha, beta in ((0.6, 0.0), (0.6, 0.3), (1.5, 0.5)):
            sequences, scores = beam_search(
                toy.step_fn,
                toy.initial_state(),
                tf.constant([1, 2]),
                end_id=END,
                beam_width=3,
                max_length=5,
                length_penalty=alpha,
                coverage_penalty=beta,
                ranking=ranking,
            )
            expected, expected_scores = toy.beam_replay([1, 2], 3, 5, alpha, beta, ranking)
            np.testing.assert_array_equal(sequences, expected)
            np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
            differs += not np.array_equal(expected, toy.beam_replay([1, 2], 3, 5, alpha, beta, other)[0])
    assert differs > 0  # the two rules do rank differently on some of these inputs


def test_the_rankings_agree_without_penalties():
    toy = ToyDecoder(3)
    found = [
        beam_search(
            toy.step_fn,
            toy.initial_state(),
            tf.constant([1, 2]),
            end_id=END,
            beam_width=3,
            max_length=5,
            ranking=ranking,
        )
        for ranking in ("gnmt", "tensorflow_addons")
    ]
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_array_equal(found[0][1], found[1][1])
