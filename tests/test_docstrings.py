"""Every public function and class has a docstring with an Example, and the examples run and
print what they say."""

import doctest
import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seqattn

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(keras_seqattn.__path__, "keras_seqattn."))
PUBLIC_MODULES = [
    "keras_seqattn",
    "keras_seqattn.ops",
    "keras_seqattn.decoding",
    "keras_seqattn.seq2seq",
    "keras_seqattn.export",
    "keras_seqattn.text",
    "keras_seqattn.visualization",
]


def _public():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in dir(module):
            obj = getattr(module, name)
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not obj.__module__.startswith("keras_seqattn") or issubclass(type(obj), type) and tuple in obj.__mro__:
                continue  # imported from elsewhere, or a result tuple (its searches show it)
            yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("name,obj", list(_public()), ids=[name for name, _ in _public()])
def test_public_api_has_an_example(name, obj):
    assert ">>> " in (inspect.getdoc(obj) or ""), f"{name} has no Example in its docstring"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    public = {n: getattr(keras_seqattn, n) for n in dir(keras_seqattn) if n[0].isupper()}
    try:
        result = doctest.testmod(
            module, extraglobs={"keras": keras, "tf": tf, "np": np, "ops": keras.ops, "ksa": keras_seqattn, **public}
        )
    finally:
        keras_seqattn.ops.set_policy(None)
    assert result.failed == 0, result
