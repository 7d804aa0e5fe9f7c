"""Every old spelling of the previous release still works for one release: it gives a
DeprecationWarning that names the new spelling, and the same result as the new spelling."""

import contextlib
import dataclasses
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seqattn as ksa
from keras_seqattn import decoding, ops
from keras_seqattn.seq2seq import AttentionDecoder
from tests.decoding.toy import END, ToyDecoder


@contextlib.contextmanager
def deprecated(*patterns):
    """Every warning raised inside is a DeprecationWarning, and each pattern matches one of them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    messages = [str(w.message) for w in caught]
    assert caught and all(w.category is DeprecationWarning for w in caught), messages
    for pattern in patterns:
        assert any(re.search(pattern, message) for message in messages), (pattern, messages)


def _qkv(length=6):
    return tuple(tf.constant(np.random.default_rng(i).normal(size=(2, length, 2, 4)), "float32") for i in range(3))


def test_flash_becomes_flash_attention_in_the_op():
    q, k, v = _qkv()
    new = ops.scaled_dot_product_attention(q, k, v, is_causal=True, flash_attention=True)
    with pytest.warns(DeprecationWarning, match="flash_attention="):
        old = ops.scaled_dot_product_attention(q, k, v, is_causal=True, flash=True)
    np.testing.assert_array_equal(old, new)
    with deprecated("flash_attention="), pytest.raises(ValueError, match="flash_attention"):
        ops.scaled_dot_product_attention(q, k, v, flash=True, flash_attention=False)


def test_positional_arguments_after_value_become_keywords():
    q, k, v = _qkv()
    mask = np.tril(np.ones((6, 6), bool))[None]
    new = ops.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=False, scale=0.5)
    with pytest.warns(DeprecationWarning, match="`mask`, `is_causal`, `scale`.*keyword"):
        old = ops.scaled_dot_product_attention(q, k, v, mask, False, 0.5)
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: ksa.MultiHeadAttention(2, 4, **kw),
        lambda **kw: ksa.ScaledDotProduct(**kw),
        lambda **kw: ksa.TransformerEncoder(8, 2, **kw),
        lambda **kw: ksa.TransformerDecoder(8, 2, **kw),
    ],
)
def test_the_layers_flash_argument_and_attribute(make):
    with pytest.warns(DeprecationWarning, match="flash_attention="):
        layer = make(flash=False)
    assert layer.flash_attention is False
    assert layer.get_config()["flash_attention"] is False and "flash" not in layer.get_config()
    with pytest.warns(DeprecationWarning, match="flash_attention"):
        assert layer.flash is False
    with pytest.warns(DeprecationWarning, match="flash_attention"):
        layer.flash = True
    assert layer.flash_attention is True
    # A config written by the previous release (with "flash") still builds the layer.
    config = dict(layer.get_config())
    config["flash"] = config.pop("flash_attention")
    with pytest.warns(DeprecationWarning, match="flash_attention="):
        assert type(layer).from_config(config).flash_attention is True


def test_the_policy_fields_and_replace():
    with pytest.warns(DeprecationWarning, match="flash_min_scores"):
        policy = ops.AttentionPolicy(blocked_min_scores=8)
    assert policy == ops.AttentionPolicy(flash_min_scores=8)
    with pytest.warns(DeprecationWarning, match="dataclasses.replace"):
        assert policy.replace(causal_rows=64) == dataclasses.replace(policy, causal_rows=64)


def test_hard_sampler_becomes_hard_attention_and_old_files_load(tmp_path):
    with pytest.warns(DeprecationWarning, match="keras_seqattn.HardAttention"):
        old_class = ksa.HardSampler
    with pytest.warns(DeprecationWarning, match="HardAttention"):
        layer = old_class(inference="expectation", seed=1)
    assert isinstance(layer, ksa.HardAttention)
    # A model saved with the old class name loads.
    weights = keras.Input((4,))
    model = keras.Model(weights, layer(weights))
    path = str(tmp_path / "old.keras")
    model.save(path)
    with pytest.warns(DeprecationWarning, match="HardAttention"):
        loaded = keras.saving.load_model(path)
    x = np.array([[0.1, 0.6, 0.3, 0.0]], "float32")
    np.testing.assert_allclose(loaded(x), x)


def test_export_vocabulary_moves_to_text():
    import keras_seqattn.export

    with pytest.warns(DeprecationWarning, match="keras_seqattn.text.Vocabulary"):
        assert keras_seqattn.export.Vocabulary is ksa.text.Vocabulary


def test_the_old_result_types_are_decoded():
    for name in ("DecodedWithAlignments", "Generated"):
        with pytest.warns(DeprecationWarning, match="keras_seqattn.decoding.Decoded"):
            assert getattr(decoding, name) is decoding.Decoded
    found = decoding.Decoded(tf.zeros([1, 2]), tf.zeros([1]), attention_scores=tf.ones([1, 2, 3]))
    with pytest.warns(DeprecationWarning, match="attention_scores"):
        np.testing.assert_array_equal(found.alignments, found.attention_scores)


def _same(old, new):
    assert len(old) == len(new)
    for a, b in zip(old, new):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_the_searches_take_their_old_positional_order_and_names():
    toy = ToyDecoder()
    start = tf.constant([1, 2])
    new = decoding.greedy_search(
        toy.step_fn, toy.initial_state(), start, end_id=END, max_length=5, return_attention_scores=True
    )
    with deprecated("`end_id`, `max_length`, `return_alignments`.*keyword", "return_attention_scores="):
        _same(decoding.greedy_search(toy.step_fn, toy.initial_state(), start, END, 5, True), new)
    with pytest.warns(DeprecationWarning, match="return_attention_scores="):
        _same(
            decoding.greedy_search(
                toy.step_fn, toy.initial_state(), start, end_id=END, max_length=5, return_alignments=True
            ),
            new,
        )
    # The old order of beam search: end_id, beam_width, max_length.
    new = decoding.beam_search(toy.step_fn, toy.initial_state(), start, end_id=END, beam_width=3, max_length=5)
    with pytest.warns(DeprecationWarning, match="`end_id`, `beam_width`, `max_length`"):
        _same(decoding.beam_search(toy.step_fn, toy.initial_state(), start, END, 3, 5), new)
    # Sampling: end_id, max_length, temperature, top_k, seed.
    new = decoding.sample_search(
        toy.step_fn, toy.initial_state(), start, end_id=END, max_length=5, temperature=0.7, top_k=2, seed=4
    )
    with pytest.warns(DeprecationWarning, match="keyword"):
        _same(decoding.sample_search(toy.step_fn, toy.initial_state(), start, END, 5, 0.7, 2, 4), new)
    # A sampler's call.
    with pytest.warns(DeprecationWarning, match="keyword"):
        _same(
            decoding.GreedySampler()(toy.step_fn, toy.initial_state(), start, END, 5),
            decoding.GreedySampler()(toy.step_fn, toy.initial_state(), start, end_id=END, max_length=5),
        )
    with pytest.raises(TypeError, match="positional"):
        decoding.greedy_search(toy.step_fn, toy.initial_state(), start, END, 5, False, False, "extra")


def test_attention_decoder_return_alignments():
    decoder = AttentionDecoder(keras.layers.GRUCell(4), ksa.BahdanauAttention(4), vocabulary_size=5, embedding_dim=3)
    targets, memory = np.ones((2, 3), "int32"), np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    _, new = decoder(targets, memory, return_attention_scores=True)
    with pytest.warns(DeprecationWarning, match="return_attention_scores="):
        _, old = decoder(targets, memory, return_alignments=True)
    np.testing.assert_allclose(old, new)


def test_export_return_attention_is_renamed_before_anything_runs():
    from keras_seqattn.export import export_translator

    with deprecated("return_attention_scores="), pytest.raises(ValueError, match="source_vocabulary"):
        export_translator(None, "unused", None, None, 4, 4, return_attention=True)
