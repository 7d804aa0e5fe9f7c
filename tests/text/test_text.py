"""Text-pipeline helpers: StartEndPacker against keras-hub's, Vocabulary's token <-> id maps, and a
Tokenizer whose vocabulary a `.keras` file restores, in tf.data, models and SavedModels."""

import itertools

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.text import StartEndPacker, Tokenizer, Vocabulary

RAGGED = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13, 14]]


@pytest.mark.parametrize(
    "start,end,side,mask", itertools.product([None, 1, [1, 3]], [None, 2, [2, 2]], ["right", "left"], [False, True])
)
def test_start_end_packer_matches_keras_hub(start, end, side, mask):
    ours = StartEndPacker(5, start_value=start, end_value=end, return_padding_mask=mask, padding_side=side)
    theirs = keras_hub.layers.StartEndPacker(
        5,
        start_value=start,
        end_value=end,
        pad_value=0,
        return_padding_mask=mask,
        padding_side=side,
        _allow_python_workflow=False,
    )  # its tf.data path
    for inputs in (tf.ragged.constant(RAGGED), tf.constant([[5, 6, 7, 8, 9, 10, 11]]), tf.constant([5, 6])):
        for call in ({}, {"add_start_value": False}, {"add_end_value": False}, {"sequence_length": 3}):
            got, expected = ours(inputs, **call), theirs(inputs, **call)
            if call == {"sequence_length": 3} and start == [1, 3] and end == [2, 2]:
                # More start and end ids than the length: keras-hub slices the ids with a negative
                # length (from the end); ours keeps no id.
                assert np.all(np.asarray(tf.nest.flatten(got)[0]).reshape(-1, 3) == [1, 3, 2])
                continue
            for a, b in zip(tf.nest.flatten(got), tf.nest.flatten(expected)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str((inputs, call)))


def test_start_end_packer_in_tf_data_lists_and_config():
    packer = StartEndPacker(4, start_value=Vocabulary.START, end_value=Vocabulary.END, return_padding_mask=True)
    data = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(RAGGED)).batch(2).map(packer)
    ids, mask = next(iter(data))
    np.testing.assert_array_equal(ids, [[1, 5, 6, 2], [1, 8, 2, 0]])
    np.testing.assert_array_equal(mask, [[True] * 4, [True] * 3 + [False]])
    np.testing.assert_array_equal(packer([[5], [6, 7]])[0], [[1, 5, 2, 0], [1, 6, 7, 2]])
    again = StartEndPacker.from_config(packer.get_config())
    np.testing.assert_array_equal(again(tf.ragged.constant(RAGGED))[0], packer(tf.ragged.constant(RAGGED))[0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"sequence_length": 0}, "`sequence_length` must be a positive"),
        ({"sequence_length": 4, "start_value": "[START]"}, "`start_value` must be None, an int id or a list"),
        ({"sequence_length": 4, "end_value": [2, 1.5]}, "`end_value` must be None"),
        ({"sequence_length": 4, "pad_value": None}, "`pad_value` must be an int id. Received: pad_value=None"),
        ({"sequence_length": 4, "padding_side": "top"}, "`padding_side` must be one of"),
    ],
)
def test_start_end_packer_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StartEndPacker(**kwargs)


def test_start_end_packer_refuses_bad_inputs():
    packer = StartEndPacker(4)
    with pytest.raises(ValueError, match=r"`inputs` must hold integer ids. Received: inputs.dtype=float32"):
        packer(tf.constant([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"`inputs` must be ids of rank 1 or 2. Received: inputs.shape=\(1, 1, 2\)"):
        packer(tf.constant([[[1, 2]]]))


def test_vocabulary_maps_tokens_and_ids_both_ways():
    words = Vocabulary.from_texts(["the cat sat", "the dog"], split="words")
    ids = words.tokens_to_ids(tf.ragged.constant([["the", "dog"], ["bird", "[START]", "[PAD]"]]))
    assert ids.to_list() == [[4, 7], [Vocabulary.UNKNOWN, Vocabulary.START, Vocabulary.PAD]]
    tokens = words.ids_to_tokens(ids)
    assert tokens.to_list() == [[b"the", b"dog"], [b"[UNK]", b"[START]", b"[PAD]"]]
    every = tf.range(words.size)
    np.testing.assert_array_equal(words.tokens_to_ids(words.ids_to_tokens(every)), every)  # a bijection
    characters = Vocabulary.from_texts(["abc"])
    assert characters.ids_to_tokens(characters.encode(tf.constant(["cab"]))).to_list() == [[b"c", b"a", b"b"]]
    with pytest.raises(
        ValueError, match=r"`ids` must be in \[0, 7\) \(the vocabulary's size\). Received: ids from 0 to 7"
    ):
        characters.ids_to_tokens([0, 7])
    with pytest.raises(ValueError, match="`ids` must hold integer ids"):
        characters.ids_to_tokens([0.5])
    with pytest.raises(ValueError, match=r"must not hold the names of the reserved ids"):
        Vocabulary(["[END]", "x"], split="words")


def _text_model(vocabulary):
    texts = keras.Input(shape=(), dtype="string")
    ids = Tokenizer(vocabulary, sequence_length=8)(texts)
    x = keras.layers.Embedding(vocabulary.size, 4, mask_zero=True)(ids)
    return keras.Model(texts, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))


def test_tokenizer_saves_its_vocabulary_with_the_model(tmp_path):
    vocabulary = Vocabulary.from_texts(["good film", "bad film"], split="words")
    model = _text_model(vocabulary)
    texts = tf.constant(["good film", "bad bad film", "unseen words"])
    expected = model(texts)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    tokenizer = next(layer for layer in loaded.layers if isinstance(layer, Tokenizer))
    assert tokenizer.vocabulary.tokens == vocabulary.tokens and tokenizer.vocabulary.split == "words"
    np.testing.assert_allclose(loaded(texts), expected, atol=1e-6)
    # tf.data, and a SavedModel served without the Python objects.
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(3).map(tokenizer)
    np.testing.assert_array_equal(next(iter(dataset)), tokenizer(texts))
    loaded.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(texts), expected, atol=1e-6)


def test_tokenizer_refuses_bad_arguments():
    with pytest.raises(ValueError, match="`vocabulary` must be a keras_seqattn.export.Vocabulary or its config"):
        Tokenizer(["a", "b"])
    with pytest.raises(ValueError, match="`sequence_length` must be"):
        Tokenizer(Vocabulary(["a"]), sequence_length=0)
    with pytest.raises(ValueError, match=r"`inputs` must be strings of shape \(batch,\)"):
        Tokenizer(Vocabulary(["a"]))(tf.constant([["a"]]))
