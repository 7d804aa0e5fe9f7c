"""Searches inside a SavedModel: beam search and sampling (with a fixed seed), served in a process
that can import neither keras_seqattn nor Keras, give what they gave before the export."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import beam_search, sample_search

_SERVE = textwrap.dedent(
    """
    import sys
    sys.modules["keras_seqattn"] = None
    sys.modules["keras"] = None
    import numpy as np
    import tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    expected = np.load(sys.argv[2])
    sequences, scores = served.decode(tf.constant(expected["start"]))
    np.testing.assert_array_equal(sequences.numpy(), expected["sequences"])
    np.testing.assert_allclose(scores.numpy(), expected["scores"], rtol=1e-5)
    print("served search matches")
    """
)


@pytest.mark.parametrize("search_kind", ["beam", "sample"])
def test_runs_inside_a_saved_model_served_without_keras(tmp_path, search_kind):
    embedding = keras.layers.Embedding(6, 8)
    cell = keras.layers.GRUCell(8)
    logits_layer = keras.layers.Dense(6)

    def step_fn(token_ids, state, step):
        output, [hidden] = cell(embedding(token_ids), [state["hidden"]])
        return logits_layer(output), {"hidden": hidden}

    module = tf.Module()
    module.layers = [embedding, cell, logits_layer]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def decode(start):
        state = {"hidden": tf.ones([tf.shape(start)[0], 8]) * 0.1}
        if search_kind == "sample":  # a fixed seed: the served model draws the same tokens
            return sample_search(step_fn, state, start, end_id=0, max_length=7, top_k=4, seed=3)
        return beam_search(step_fn, state, start, end_id=0, beam_width=3, max_length=7, length_penalty=0.6)

    module.decode = decode
    start = np.array([1, 2, 3, 4, 5], "int32")
    sequences, scores = decode(tf.constant(start))
    tf.saved_model.save(module, str(tmp_path / "served"))
    np.savez(tmp_path / "expected.npz", start=start, sequences=sequences.numpy(), scores=scores.numpy())
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, str(tmp_path / "served"), str(tmp_path / "expected.npz")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served search matches" in result.stdout
