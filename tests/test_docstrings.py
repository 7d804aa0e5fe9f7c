"""The examples in the docstrings run and print what they say."""

import doctest
import importlib

import keras
import pytest
import tensorflow as tf

import keras_seqattn

MODULES = ["layers.alibi_bias", "layers.attention_pooling", "layers.bahdanau_attention",
           "layers.hard_sampler", "layers.hierarchical_attention", "layers.luong_attention",
           "layers.memory_attention", "layers.multi_head_attention", "layers.positional_encoding",
           "layers.rotary_embedding", "layers.scaled_dot_product", "layers.transformer_decoder",
           "layers.transformer_encoder", "decoding.beam_search", "decoding.caches", "decoding.greedy_search",
           "decoding.sample_search", "export.vocabulary", "seq2seq.attention_decoder"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"keras_seqattn.{name}")
    public = {n: getattr(keras_seqattn, n) for n in dir(keras_seqattn) if n[0].isupper()}
    result = doctest.testmod(module, extraglobs={"keras": keras, "tf": tf, "ops": keras.ops, **public})
    assert result.attempted > 0 and result.failed == 0, result
