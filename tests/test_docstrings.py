"""The examples in the layers' docstrings run and print what they say."""

import doctest
import importlib

import keras
import pytest

import keras_seqattn

MODULES = ["bahdanau_attention", "luong_attention", "multi_head_attention", "positional_encoding",
           "scaled_dot_product", "transformer_encoder", "transformer_decoder"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"keras_seqattn.layers.{name}")
    public = {n: getattr(keras_seqattn, n) for n in dir(keras_seqattn) if n[0].isupper()}
    result = doctest.testmod(module, extraglobs={"keras": keras, **public})
    assert result.attempted > 0 and result.failed == 0, result
