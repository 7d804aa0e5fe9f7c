import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.decoding import greedy_search
from keras_seqattn.export import export_generator
from keras_seqattn.text import Vocabulary
from tests.decoding.lm import TinyLM

LM = TinyLM(seed=2)
VOCABULARY = Vocabulary(list("abcdefg"), split="characters")  # ids 4-10: TinyLM's 11
PROMPTS = ["abc", "gfedcba", "", "zz"]  # an empty prompt; unknown characters


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("generator") / "served")
    module = export_generator(LM, path, VOCABULARY, max_prompt_length=6, max_new_tokens=5)
    return path, module


def test_the_served_continuation_is_the_prompted_search(exported, tmp_path):
    path, module = exported
    outputs = module.generate(tf.constant(PROMPTS))
    for text, continuation, score in zip(PROMPTS, outputs["text"].numpy(), outputs["score"].numpy()):
        ids = VOCABULARY.encode(tf.constant([text]))[:, -6:]
        ids = ids if ids.row_lengths()[0] else tf.ragged.constant([[Vocabulary.START]], tf.int32)
        found = greedy_search(
            LM.step, LM.initial_state(1), None, end_id=Vocabulary.END, max_length=5, prompt=ids, prefill_fn=LM.prefill
        )
        generated = found.sequences.numpy()[0, int(ids.row_lengths()[0]) :]
        assert continuation == VOCABULARY.decode(tf.constant([generated])).numpy()[0]
        np.testing.assert_allclose(score, found.scores.numpy()[0], rtol=1e-5)
    served = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import sys
        sys.modules["keras_seqattn"] = None
        sys.modules["keras"] = None
        sys.modules["tensorflow_text"] = None
        import tensorflow as tf
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        print(serve(prompt=tf.constant(sys.argv[2:]))["text"].numpy().tolist())
    """),
            path,
            *PROMPTS,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout.strip() == str(outputs["text"].numpy().tolist())


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(search="nucleus"), "search"),
        (dict(max_new_tokens=0), "max_new_tokens"),
        (dict(model=object()), "model"),
        (dict(vocabulary=["a"]), "vocabulary"),
    ],
)
def test_bad_arguments(kwargs, argument, tmp_path):
    arguments = dict(model=LM, export_dir=str(tmp_path), vocabulary=VOCABULARY, max_prompt_length=4, max_new_tokens=3)
    with pytest.raises(ValueError, match=argument):
        export_generator(**{**arguments, **kwargs})
