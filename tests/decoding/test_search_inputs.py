"""What every search takes: start ids as lists, tuples, NumPy arrays or tensors, with messages
that show the real shape, and end and start ids checked against the step function's vocabulary."""

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import beam_search, greedy_search, sample_search
from tests.decoding.toy import search_args

SEARCHES = {
    "greedy": (greedy_search, {}),
    "sample": (sample_search, {"seed": 1}),
    "beam": (beam_search, {"beam_width": 2}),
}


def _bigram_step(token_ids, state, step):  # a 3-token vocabulary: 1 then 0 (the end)
    table = tf.math.log(tf.constant([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]))
    return tf.gather(table, token_ids), state


@pytest.mark.parametrize("kind", SEARCHES)
@pytest.mark.parametrize(
    "start_ids", [[2, 2], (2, 2), np.array([2, 2]), np.array([2, 2], "int64"), tf.constant([2, 2])]
)
def test_start_ids_of_any_array_like_kind(kind, start_ids):
    search, extra = SEARCHES[kind]
    sequences = search(
        _bigram_step, {}, start_ids, end_id=0, max_length=3, **({"top_k": 1} if kind == "sample" else {}), **extra
    )[0]
    best = sequences[:, 0] if kind == "beam" else sequences
    np.testing.assert_array_equal(best, [[1, 0, 0], [1, 0, 0]])


@pytest.mark.parametrize("kind", SEARCHES)
def test_bad_start_ids_are_reported_with_their_real_shape(kind):
    search, extra = SEARCHES[kind]
    with pytest.raises(ValueError, match=r"`start_ids` must have rank 1\. Received: start_ids\.shape=\(1, 2\)"):
        search(**search_args(start_ids=[[1, 1]]), **extra)
    with pytest.raises(ValueError, match=r"start_ids\.shape=\(\)"):
        search(**search_args(start_ids=1), **extra)
    with pytest.raises(ValueError, match="`start_ids` must hold integer"):
        search(**search_args(start_ids=[1.5]), **extra)


@pytest.mark.parametrize("kind", SEARCHES)
@pytest.mark.parametrize("jit_compile", [True, False])
def test_ids_outside_the_vocabulary_are_refused(kind, jit_compile):
    search, extra = SEARCHES[kind]
    args = dict(step_fn=_bigram_step, initial_state={}, jit_compile=jit_compile)
    with pytest.raises(ValueError, match=r"`end_id` must be a token of the step function's vocabulary of 3"):
        search(**search_args(end_id=3, **args), **extra)
    for bad in ([3], [-1]):
        with pytest.raises(ValueError, match=r"`start_ids` must be tokens of the step function's vocabulary of 3"):
            search(**search_args(start_ids=bad, **args), **extra)


@pytest.mark.parametrize("kind", SEARCHES)
def test_jit_compile_auto_compiles_from_four_rows_on_a_cpu(kind, monkeypatch):
    # Which program each call runs: XLA or TensorFlow's kernels, as decoding decides for its rows.
    from keras_seqattn.decoding import sampler
    from keras_seqattn.ops import AttentionPolicy, policy_scope

    chosen = []
    compiled = sampler.Sampler._compiled
    monkeypatch.setattr(
        sampler.Sampler, "_compiled", lambda self, *args: chosen.append(args[-1]) or compiled(self, *args)
    )
    search, extra = SEARCHES[kind]
    rows = 2 if kind == "beam" else 1  # per input
    for batch, jit_compile, expected in [
        (1, "auto", rows >= 4),
        (2, "auto", 2 * rows >= 4),
        (4, "auto", True),
        (8, False, False),
        (1, True, True),
    ]:
        chosen.clear()
        search(_bigram_step, {}, [2] * batch, end_id=0, max_length=2, jit_compile=jit_compile, **extra)
        assert chosen == [expected], (batch, jit_compile)
    # The attention policy's compile setting no longer decides for the searches.
    for policy in (AttentionPolicy(compile="always"), AttentionPolicy(compile="never")):
        chosen.clear()
        with policy_scope(policy):
            search(_bigram_step, {}, [2], end_id=0, max_length=2, **extra)
        assert chosen == [rows >= 4]
    # The deprecated policy field still sets the threshold for one release.
    with pytest.warns(DeprecationWarning, match="jit_compile"):
        policy = AttentionPolicy(search_xla_rows=1)
    chosen.clear()
    with policy_scope(policy):
        search(_bigram_step, {}, [2], end_id=0, max_length=2, **extra)
    assert chosen == [True]
    with pytest.raises(ValueError, match=r"`jit_compile` must be True, False or 'auto'\. Received: jit_compile='yes'"):
        search(**search_args(jit_compile="yes"), **extra)
