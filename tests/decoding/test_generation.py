"""Prompted generation: prefill in one call equals feeding the prompt token by token; left and
right padding and ragged prompts give each row what it gives alone; lengths and stop ids; and the
sampling distributions (top-p, repetition penalty) against NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import beam_search, greedy_search, sample_search
from keras_seqattn.decoding.random_sampler import keep_likeliest, penalize_repetitions
from tests.decoding.lm import VOCAB, TinyLM

LM = TinyLM()
PROMPTS = [[3, 5, 7, 2, 9], [4, 4], [8, 1, 6]]
END = 0


def _right_padded(prompts):
    width = max(map(len, prompts))
    ids = np.array([p + [0] * (width - len(p)) for p in prompts], "int32")
    return ids, ids * 0 + (np.arange(width)[None, :] < np.array([len(p) for p in prompts])[:, None])


def _left_padded(prompts):
    width = max(map(len, prompts))
    ids = np.array([[0] * (width - len(p)) + p for p in prompts], "int32")
    return ids, np.arange(width)[None, :] >= width - np.array([len(p) for p in prompts])[:, None]


def _search(kind, prompt, mask=None, prefill=True, **kwargs):
    state = LM.initial_state(len(prompt) if not isinstance(prompt, tf.RaggedTensor) else prompt.nrows())
    common = dict(
        prompt=prompt, prompt_mask=mask, prefill_fn=LM.prefill if prefill else None, end_id=END, max_length=6, **kwargs
    )
    if kind == "greedy":
        return greedy_search(LM.step, state, None, **common)
    if kind == "sample":
        return sample_search(LM.step, state, None, seed=3, top_k=4, **common)
    return beam_search(LM.step, state, None, beam_width=2, **common)


@pytest.mark.parametrize("kind", ["greedy", "sample", "beam"])
def test_prefill_equals_feeding_the_prompt_token_by_token(kind):
    ids, mask = _right_padded(PROMPTS)
    prefilled, stepped = _search(kind, ids, mask), _search(kind, ids, mask, prefill=False)
    for got, want in zip(prefilled, stepped):
        np.testing.assert_allclose(got, want, atol=1e-5)
    sequences = prefilled.sequences.numpy() if kind != "beam" else prefilled.sequences.numpy()[:, 0]
    for row, prompt in enumerate(PROMPTS):  # every row starts with its own prompt
        assert sequences[row, : len(prompt)].tolist() == prompt


def test_sampling_gives_a_row_the_same_draws_whatever_the_padding():
    # Draws depend on the row's place in the batch and the step, so a row sampled alone may draw
    # other tokens; left and right padding and a ragged prompt give the same draws.
    right, left = _search("sample", *_right_padded(PROMPTS)), _search("sample", *_left_padded(PROMPTS))
    ragged = _search("sample", tf.ragged.constant(PROMPTS))
    for other in (left, ragged):
        np.testing.assert_array_equal(other.sequences, right.sequences)
        np.testing.assert_allclose(other.scores, right.scores, atol=1e-5)


@pytest.mark.parametrize("kind", ["greedy", "beam"])
def test_each_row_gets_what_it_gets_alone_whatever_the_padding(kind):
    alone = [_search(kind, np.array([p], "int32")) for p in PROMPTS]
    for ids, mask in (_right_padded(PROMPTS), _left_padded(PROMPTS)):
        together = _search(kind, ids, mask)
        for row, single in enumerate(alone):
            length = int(single.lengths.numpy().reshape(-1)[0])
            np.testing.assert_array_equal(
                together.sequences.numpy()[row].reshape(-1)[:length], single.sequences.numpy()[0].reshape(-1)[:length]
            )
            np.testing.assert_allclose(together.scores.numpy()[row], single.scores.numpy()[0], atol=1e-5)
            np.testing.assert_array_equal(together.lengths.numpy()[row], single.lengths.numpy()[0])
    ragged = _search(kind, tf.ragged.constant(PROMPTS))
    np.testing.assert_array_equal(ragged.sequences, _search(kind, *_right_padded(PROMPTS)).sequences)


def test_lengths_and_stop_ids():
    ids, mask = _right_padded(PROMPTS)
    free = _search("greedy", ids, mask)
    assert free.sequences.shape == (3, 5 + 6)
    lengths = free.lengths.numpy()
    assert np.all(lengths <= np.array([5, 2, 3]) + 6) and np.all(lengths > [5, 2, 3])
    # Stop on the first generated token of row 0, whatever it is: the row ends there.
    first = int(free.sequences.numpy()[0, 5])
    stopped = _search("greedy", ids, mask, stop_ids=[first])
    assert stopped.lengths.numpy()[0] == 6
    assert np.all(stopped.sequences.numpy()[0, 6:] == END)


def _distribution(logits, history, temperature=1.0, top_k=None, top_p=None, penalty=1.0):
    """NumPy: the distribution a RandomSampler draws from."""
    logits = np.asarray(logits, np.float64).copy()
    for token in set(history):
        logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
    logits /= temperature
    order = np.argsort(-logits, kind="stable")
    keep = np.zeros(len(logits), bool)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    total = 0.0
    for rank, token in enumerate(order):
        if (top_k is None or rank < top_k) and (top_p is None or total < top_p):
            keep[token] = True
        total += probs[token]
    probs = np.where(keep, probs, 0.0)
    return probs / probs.sum()


@pytest.mark.parametrize(
    "settings",
    [
        dict(top_p=0.6),
        dict(top_p=0.9, temperature=0.7),
        dict(top_k=3, top_p=0.8),
        dict(penalty=1.8),
        dict(penalty=0.6, top_p=0.95),
    ],
)
def test_sampling_draws_from_the_numpy_distribution(settings):
    logits = np.array([2.0, 1.5, -0.5, 0.3, 1.0, -1.2], "float32")
    history = [0, 3, 2]
    expected = _distribution(logits, history, **settings)
    rows = 6000
    table = tf.constant(np.tile(logits, (VOCAB, 1))[:, :6])

    def step_fn(token_ids, state, step):  # the same logits after any token
        return tf.gather(table, token_ids), state

    prompt = np.tile(np.array([history], "int32"), (rows, 1))
    kwargs = dict(
        temperature=settings.get("temperature", 1.0),
        top_k=settings.get("top_k"),
        top_p=settings.get("top_p"),
        repetition_penalty=settings.get("penalty", 1.0),
    )
    drawn = sample_search(step_fn, {}, None, end_id=5, max_length=1, seed=1, prompt=prompt, **kwargs)
    frequencies = np.bincount(drawn.sequences.numpy()[:, 3], minlength=6) / rows
    np.testing.assert_allclose(frequencies, expected, atol=0.025)
    assert np.all(frequencies[expected == 0] == 0)


def test_the_truncations_against_numpy_exactly():
    logits = tf.constant([[3.0, 1.0, 2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(np.isfinite(keep_likeliest(logits, None, 0.5)), [[True, False, False, False, False]])
    kept = np.isfinite(keep_likeliest(logits, 2, 0.99))
    np.testing.assert_array_equal(kept, [[True, False, True, False, False]])
    penalized = penalize_repetitions(logits, tf.constant([[0, 4]]), tf.constant([[True, True]]), 2.0)
    np.testing.assert_allclose(penalized, [[1.5, 1.0, 2.0, 0.0, -2.0]])


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(repetition_penalty=0), "repetition_penalty"),
        (dict(stop_ids=3), "stop_ids"),
        (dict(stop_ids=[-1]), "stop_ids"),
    ],
)
def test_bad_sampling_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        sample_search(LM.step, LM.initial_state(1), None, end_id=END, max_length=2, prompt=[[3, 4]], **kwargs)


def test_bad_prompt_arguments():
    with pytest.raises(ValueError, match="start_ids"):
        greedy_search(LM.step, LM.initial_state(1), [1], end_id=END, max_length=2, prompt=[[3]])
    with pytest.raises(ValueError, match="prompt_mask"):
        greedy_search(
            LM.step, LM.initial_state(1), None, end_id=END, max_length=2, prompt=[[3, 4]], prompt_mask=[[True]]
        )
    with pytest.raises(ValueError, match="prefill_fn"):
        greedy_search(LM.step, LM.initial_state(1), [1], end_id=END, max_length=2, prefill_fn=LM.prefill)
    with pytest.raises(ValueError, match="prompt"):
        greedy_search(LM.step, LM.initial_state(1), None, end_id=END, max_length=2, prompt=[[3, 99]])
