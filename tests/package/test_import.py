"""`import keras_seqattn` alone registers every serializable class and reaches every subpackage."""

import os
import subprocess
import sys
import textwrap

import keras


def _run(code, *args):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_serializable_class_is_registered_by_the_package_import():
    # Every class registered under "keras_seqattn" once every module is imported ...
    every = _run("""
        import importlib, pkgutil, keras, keras_seqattn
        for module in pkgutil.walk_packages(keras_seqattn.__path__, "keras_seqattn."):
            importlib.import_module(module.name)
        print(sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_seqattn>")))
    """)
    # ... is registered by `import keras_seqattn` alone.
    package_only = _run("""
        import keras, keras_seqattn
        print(sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_seqattn>")))
    """)
    assert "keras_seqattn>AttentionDecoder" in every
    assert package_only == every


def test_a_saved_attention_decoder_loads_after_the_package_import(tmp_path):
    from keras_seqattn import BahdanauAttention
    from keras_seqattn.seq2seq import AttentionDecoder

    target, source = keras.Input((None,), dtype="int32"), keras.Input((None, 6))
    logits = AttentionDecoder(keras.layers.GRUCell(8), BahdanauAttention(4), vocabulary_size=7, embedding_dim=3)(
        target, source
    )
    path = str(tmp_path / "decoder.keras")
    keras.Model([target, source], logits).save(path)
    out = _run(
        """
        import sys, keras, keras_seqattn
        model = keras.saving.load_model(sys.argv[1])
        print(type(model.layers[-1]).__name__, callable(keras_seqattn.decoding.greedy_search))
    """,
        path,
    )
    assert out.split() == ["AttentionDecoder", "True"]
