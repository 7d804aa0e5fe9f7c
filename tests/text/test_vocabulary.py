import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn.text import Vocabulary


def test_characters_round_trip_with_non_ascii_and_reserved_ids():
    vocabulary = Vocabulary.from_texts(["dreißig", "fünf", "2026年11月22日"])
    assert vocabulary.size == Vocabulary.RESERVED + len(vocabulary.tokens)
    assert vocabulary.tokens[:2] == ("2", "i")  # most frequent first
    texts = tf.constant(["fünf", "dreißig", "11月", ""])
    ids = vocabulary.encode(texts)
    assert ids.dtype == tf.int32 and ids.row_lengths().numpy().tolist() == [4, 7, 3, 0]
    assert min(ids.flat_values.numpy()) >= Vocabulary.RESERVED
    np.testing.assert_array_equal(vocabulary.decode(ids.to_tensor()).numpy(), texts.numpy())


def test_words_split_punctuation_and_join_with_spaces():
    vocabulary = Vocabulary.from_texts(["nine thousand, nine hundred and ninety-nine"], split="words")
    assert set(vocabulary.tokens) == {"nine", "thousand", ",", "hundred", "and", "ninety", "-"}
    ids = vocabulary.encode(tf.constant(["ninety-nine"]))
    ninety, dash, nine = (Vocabulary.RESERVED + vocabulary.tokens.index(t) for t in ("ninety", "-", "nine"))
    assert ids.to_list() == [[ninety, dash, nine]]
    assert vocabulary.decode(ids.to_tensor()).numpy().tolist() == [b"ninety - nine"]


def test_unknown_tokens_and_invalid_utf8_map_to_unknown():
    vocabulary = Vocabulary(["a", "b"])
    ids = vocabulary.encode(tf.constant([b"a\xffc"]))  # invalid byte, unknown character
    a = Vocabulary.RESERVED
    assert ids.to_list() == [[a, Vocabulary.UNKNOWN, Vocabulary.UNKNOWN]]
    assert vocabulary.decode(ids.to_tensor()).numpy()[0].decode() == "a\ufffd\ufffd"


def test_lowercase_folds_case_before_lookup():
    vocabulary = Vocabulary(["one", "two"], split="words", lowercase=True)
    assert vocabulary.encode(tf.constant(["One TWO"])).to_list() == [[4, 5]]


def test_decode_stops_at_end_and_drops_pad_and_start():
    vocabulary = Vocabulary(["x", "y"])
    ids = tf.constant([[Vocabulary.START, 4, 5, Vocabulary.END, 4, 4], [4, 0, 5, 0, 0, 0]])
    assert vocabulary.decode(ids).numpy().tolist() == [b"xy", b"xy"]


def test_tables_are_tracked_and_work_in_a_reloaded_saved_model(tmp_path):
    vocabulary = Vocabulary(["a", "b", "c"])
    module = tf.Module()
    module.vocabulary = vocabulary
    module.encode = tf.function(
        lambda t: vocabulary.encode(t).to_tensor(), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path))
    assert reloaded.encode(tf.constant(["cab", "z"])).numpy().tolist() == [[6, 4, 5], [3, 0, 0]]


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(tokens=["a"], split="bytes"), "split"),
        (dict(tokens=[]), "tokens"),
        (dict(tokens=["a", "a"]), "tokens"),
        (dict(tokens=["ab"]), "tokens"),
        (dict(tokens=["a", ""], split="words"), "tokens"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        Vocabulary(**kwargs)
