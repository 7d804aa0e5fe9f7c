import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import BahdanauAttention
from keras_seqattn.decoding import beam_search
from keras_seqattn.export import export_captioner
from keras_seqattn.seq2seq import AttentionDecoder
from keras_seqattn.text import Vocabulary

IMAGES = np.random.default_rng(0).uniform(size=(5, 12, 12, 3)).astype("float32")


class Captioner(keras.Model):
    def __init__(self, vocabulary_size):
        super().__init__()
        self.cnn = keras.layers.Conv2D(8, 3, strides=3)  # (batch, 4, 4, 8)
        self.decoder = AttentionDecoder(
            keras.layers.GRUCell(8), BahdanauAttention(6), vocabulary_size, 4, initial_state_from_memory=True
        )

    def call(self, inputs):
        images, caption_in = inputs
        return self.decoder(caption_in, self.cnn(images))

    def initial_state(self, images):
        return self.decoder.initial_state(self.cnn(images))

    def step(self, token_ids, state, step):
        return self.decoder.step(token_ids, state, step)


@pytest.fixture(scope="module")
def captioner():
    keras.utils.set_random_seed(1)
    vocabulary = Vocabulary(["a", "red", "blue", "circle", "square"], split="words")
    model = Captioner(vocabulary.size)
    model((IMAGES, np.ones((5, 3), "int32")))
    return model, vocabulary


_FRESH_PROCESS = textwrap.dedent("""
    import sys
    sys.modules["keras_seqattn"] = None  # importing these now raises ImportError
    sys.modules["keras"] = None
    sys.modules["tensorflow_text"] = None
    import numpy as np
    import tensorflow as tf
    expected = np.load(sys.argv[2])
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    outputs = serve(image=tf.constant(expected["images"]))
    np.testing.assert_array_equal(outputs["caption"].numpy(), expected["captions"])
    np.testing.assert_allclose(outputs["score"].numpy(), expected["scores"], rtol=1e-5)
    print("served captions match")
""")


def test_served_captions_equal_the_in_memory_search_in_a_fresh_process(captioner, tmp_path):
    model, vocabulary = captioner
    module = export_captioner(
        model,
        str(tmp_path / "served"),
        vocabulary,
        image_shape=(12, 12, 3),
        max_target_length=6,
        beam_width=2,
        return_attention_scores=True,
    )
    outputs = module.caption(tf.constant(IMAGES))
    sequences, scores = beam_search(
        model.step,
        model.initial_state(IMAGES),
        tf.fill([5], Vocabulary.START),
        end_id=Vocabulary.END,
        beam_width=2,
        max_length=6,
    )
    np.testing.assert_array_equal(outputs["caption"].numpy(), vocabulary.decode(sequences[:, 0]).numpy())
    np.testing.assert_allclose(outputs["score"], scores[:, 0], rtol=1e-5)
    assert outputs["attention"].shape == (5, 6, 16)  # 4 x 4 positions
    np.savez(
        tmp_path / "expected.npz",
        images=IMAGES,
        captions=outputs["caption"].numpy().astype(bytes),
        scores=outputs["score"].numpy(),
    )
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, str(tmp_path / "served"), str(tmp_path / "expected.npz")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0 and "served captions match" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(target_vocabulary=None), "target_vocabulary"),
        (dict(model=object()), "model"),
        (dict(image_shape=(12, 0, 3)), "image_shape"),
        (dict(image_shape=12), "image_shape"),
        (dict(max_target_length=0), "max_target_length"),
        (dict(beam_width=0), "beam_width"),
    ],
)
def test_bad_arguments(captioner, kwargs, argument, tmp_path):
    model, vocabulary = captioner
    arguments = dict(
        model=model,
        export_dir=str(tmp_path),
        target_vocabulary=vocabulary,
        image_shape=(12, 12, 3),
        max_target_length=4,
    )
    with pytest.raises(ValueError, match=argument):
        export_captioner(**{**arguments, **kwargs})
    assert not os.listdir(tmp_path)
