"""Under Keras's JAX and NumPy backends: the layers run (and a model trained on JAX reloads on
TensorFlow), and the parts written in TensorFlow (AttentionDecoder, the searches, the export, the
flash path) refuse with a ValueError that names the backend."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    import keras_seqattn as ksa
    from keras_seqattn.decoding import beam_search, greedy_search, sample_search
    from keras_seqattn.text import Vocabulary
    from keras_seqattn.export import export_translator
    from keras_seqattn.seq2seq import AttentionDecoder

    backend = keras.backend.backend()
    x = np.random.default_rng(0).normal(size=(4, 5, 8)).astype("float32")
    tokens = keras.Input((5, 8))
    y = ksa.TransformerEncoder(16, 2)(ksa.PositionalEncoding()(tokens))
    y = ksa.MultiHeadAttention(2, 4)(y, y, use_causal_mask=True)
    model = keras.Model(tokens, ksa.BahdanauAttention(4)(y, y))
    out = model(x)
    assert type(out).__module__.split(".")[0] in {"jax": ("jax", "jaxlib"), "numpy": ("numpy",)}[backend], type(out)
    if backend == "jax":  # training needs a trainable backend
        model.compile("sgd", "mse")
        model.fit(x, np.zeros((4, 5, 8), "float32"), epochs=1, verbose=0)
    model.save(sys.argv[1])
    np.save(sys.argv[2], np.asarray(model(x)))

    refused = {
        "AttentionDecoder": lambda: AttentionDecoder(keras.layers.GRUCell(4), ksa.BahdanauAttention(4), 5, 3),
        "GreedySampler": lambda: greedy_search(lambda t, s, i: (np.zeros((1, 3)), s), {}, [1], end_id=0, max_length=3),
        "RandomSampler": lambda: sample_search(lambda t, s, i: (np.zeros((1, 3)), s), {}, [1], end_id=0, max_length=3),
        "BeamSampler": lambda: beam_search(lambda t, s, i: (np.zeros((2, 3)), s), {}, [1], end_id=0, beam_width=2,
                                                   max_length=3),
        "export_translator": lambda: export_translator(None, "unused", None, None, 4, 4),
        "flash_attention=True": lambda: ksa.ops.scaled_dot_product_attention(x, x, x, flash_attention=True),
    }
    for name, call in refused.items():
        try:
            call()
        except ValueError as error:
            assert f"backend={backend!r}" in str(error) and name in str(error), (name, str(error))
        else:
            raise AssertionError(f"{name} ran on {backend}")
    print("checked")
""")


@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_layers_run_and_tensorflow_parts_refuse_on_other_backends(backend, tmp_path):
    path, expected = str(tmp_path / "model.keras"), str(tmp_path / "expected.npy")
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, path, expected],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0 and "checked" in result.stdout, result.stderr[-3000:]

    import keras

    import keras_seqattn  # noqa: F401  (registers the layers)

    x = np.random.default_rng(0).normal(size=(4, 5, 8)).astype("float32")
    reloaded = keras.saving.load_model(path)  # saved on `backend`, loaded on TensorFlow
    np.testing.assert_allclose(reloaded(x), np.load(expected), atol=1e-5)


_CASES = textwrap.dedent("""
    import numpy as np
    import keras_seqattn as ksa

    rng = np.random.default_rng(0)
    f = lambda *shape: rng.normal(size=shape).astype("float32")
    ids = lambda *shape: rng.integers(1, 10, size=shape).astype("int32")
    CASES = {
        "bahdanau": (lambda: ksa.BahdanauAttention(4, normalize=True), (f(2, 3, 5), f(2, 4, 6))),
        "luong_local": (lambda: ksa.LuongAttention("concat", window=2), (f(2, 3, 5), f(2, 4, 5))),
        "hard": (lambda: ksa.BahdanauAttention(4, sampling="hard"), (f(2, 3, 5), f(2, 4, 6))),
        "scaled_dot_product": (lambda: ksa.ScaledDotProduct(), (f(2, 3, 4), f(2, 5, 4), f(2, 5, 3))),
        "multi_head": (lambda: ksa.MultiHeadAttention(2, 3, attention_axes=(1, 2)), (f(2, 3, 2, 6), f(2, 4, 2, 6))),
        "positions": (lambda: ksa.PositionalEncoding(mode="learned", max_length=8), (f(2, 5, 6),)),
        "encoder": (lambda: ksa.TransformerEncoder(8, 2), (f(2, 5, 6),)),
        "decoder": (lambda: ksa.TransformerDecoder(8, 2), (f(2, 5, 6), f(2, 4, 6))),
        "pooling": (lambda: ksa.AttentionPooling(4, heads=2), (f(2, 5, 6),)),
        "hierarchical": (lambda: ksa.HierarchicalAttention(word_units=3, sentence_units=3), (f(2, 3, 4, 6),)),
        "memory": (lambda: ksa.MemoryAttention(10, 6, hops=2, max_memories=4), (ids(2, 4, 3), ids(2, 3))),
    }
""")

_ON_BACKEND = _CASES + textwrap.dedent("""
    import sys
    results = {}
    for name, (make, inputs) in CASES.items():
        layer = make()
        results[name + "/output"] = np.asarray(layer(*inputs))
        for i, weight in enumerate(layer.get_weights()):
            results[f"{name}/weight{i}"] = weight
    np.savez(sys.argv[1], **results)
    print("computed")
""")


@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_every_layer_computes_on_another_backend_what_it_computes_on_tensorflow(backend, tmp_path):
    path = str(tmp_path / "results.npz")
    result = subprocess.run(
        [sys.executable, "-c", _ON_BACKEND, path],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0 and "computed" in result.stdout, result.stderr[-3000:]
    theirs = dict(np.load(path))
    namespace = {}
    exec(_CASES, namespace)  # the same inputs, on TensorFlow, with the other backend's weights
    for name, (make, inputs) in namespace["CASES"].items():
        layer = make()
        layer(*inputs)
        layer.set_weights([theirs[f"{name}/weight{i}"] for i in range(len(layer.get_weights()))])
        np.testing.assert_allclose(layer(*inputs), theirs[f"{name}/output"], atol=2e-5, err_msg=name)
