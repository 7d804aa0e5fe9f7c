"""The shared layer test: every public layer runs through `run_layer_test`.

It checks, for one layer configuration and one set of inputs:
- get_config/from_config and Keras (de)serialization round trips;
- the eager call equals the call inside a functional model (inputs with unknown batch and length);
- the same model under `tf.function(jit_compile=True)` equals eager (XLA == eager);
- a `.keras` save and load gives identical outputs;
- `model.fit` on a `tf.data.Dataset` with `jit_compile=True` and `False` runs, gives finite losses
  and changes the weights in front of and inside the layer (gradients flow through the kernels);
- mixed_float16 and mixed_bfloat16: outputs in the compute dtype, finite, close to float32;
- `model.export` reloaded with `tf.saved_model.load` in a fresh Python process in which neither
  keras_seqattn nor keras can be imported gives the same outputs.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    sys.modules["keras_seqattn"] = None  # importing either now raises ImportError
    sys.modules["keras"] = None
    import numpy as np
    import tensorflow as tf
    data = dict(np.load(sys.argv[2]))
    expected = data.pop("__expected__")
    served = tf.saved_model.load(sys.argv[1])  # keep a reference: its variables live in it
    output = served.serve(data)
    np.testing.assert_allclose(np.asarray(output), expected, rtol=1e-5, atol=1e-5)
    print("fresh-process outputs match")
    """
)


def _model(layer, inputs, call_kwargs, project_inputs=False):
    """A functional model `dict of inputs -> layer output`; with `project_inputs`, a Dense layer
    in front of every float input, so that a model around a weightless layer can train."""
    symbolic = {
        name: keras.Input(shape=(None,) * (value.ndim - 2) + value.shape[-1:], dtype=value.dtype, name=name)
        if value.ndim > 1
        else keras.Input(shape=(), dtype=value.dtype, name=name)
        for name, value in inputs.items()
    }
    layer_inputs = dict(symbolic)
    if project_inputs:
        for name, value in inputs.items():
            if value.dtype.kind == "f":
                layer_inputs[name] = keras.layers.Dense(value.shape[-1], name=f"pre_{name}")(symbolic[name])
    return keras.Model(symbolic, layer(**layer_inputs, **call_kwargs))


def _close(actual, expected, tol, what):
    np.testing.assert_allclose(
        np.asarray(actual, "float32"), np.asarray(expected, "float32"), rtol=tol, atol=tol, err_msg=what
    )


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    call_kwargs=None,
    tmp_path=None,
    expected_output_shape=None,
    mixed_precision=True,
    export=True,
):
    """Run every harness check on `layer_cls(**init_kwargs)` called as `layer(**inputs, **call_kwargs)`.

    `inputs` maps call-argument names to NumPy arrays (batch first); `call_kwargs` holds the
    non-tensor call arguments. Returns the eager output of the tested layer.
    """
    call_kwargs = call_kwargs or {}

    # Config round trips.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    revived = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(revived) is layer_cls and revived.get_config() == config

    # Eager call, then the same layer inside a functional model.
    tensors = {name: tf.constant(value) for name, value in inputs.items()}
    eager = layer(**tensors, **call_kwargs)
    assert np.all(np.isfinite(eager)), "eager output is not finite"
    if expected_output_shape is not None:
        assert tuple(eager.shape) == tuple(expected_output_shape), eager.shape
    model = _model(layer, inputs, call_kwargs)
    _close(model(tensors), eager, 1e-6, "functional model != eager call")
    _close(tf.function(model, jit_compile=True)(tensors), eager, 1e-5, "XLA != eager")

    # .keras save and load.
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    _close(keras.models.load_model(path)(tensors), eager, 0.0, ".keras reload changed outputs")

    # fit on tf.data, with and without XLA.
    rng = np.random.default_rng(0)
    targets = rng.normal(size=eager.shape).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(max(1, len(targets) // 2))
    for jit_compile in (True, False):
        trainer = _model(layer_cls.from_config(config), inputs, call_kwargs, project_inputs=True)
        before = [w.numpy().copy() for w in trainer.trainable_weights]
        trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
        losses = trainer.fit(dataset, epochs=2, verbose=0).history["loss"]
        assert np.all(np.isfinite(losses)), f"fit(jit_compile={jit_compile}) losses {losses}"
        changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, trainer.trainable_weights)]
        assert changed and all(changed), f"fit(jit_compile={jit_compile}): weights left unchanged {changed}"

    # Mixed precision, with the float32 layer's weights.
    if mixed_precision:
        for policy, tol in (("mixed_float16", 2e-2), ("mixed_bfloat16", 8e-2)):
            low = layer_cls.from_config({**config, "dtype": policy})
            low(**tensors, **call_kwargs)
            low.set_weights(layer.get_weights())
            output = low(**tensors, **call_kwargs)
            assert output.dtype == low.compute_dtype, (policy, output.dtype)
            assert np.all(np.isfinite(np.asarray(output, "float32"))), f"{policy} output is not finite"
            scale = max(1.0, float(np.abs(eager).max()))
            _close(np.asarray(output, "float32") / scale, np.asarray(eager) / scale, tol, policy)

    # SavedModel served in a fresh process that cannot import keras_seqattn or keras.
    if export:
        export_dir = os.path.join(tmp_path, "exported")
        model.export(export_dir, verbose=False)
        data_path = os.path.join(tmp_path, "data.npz")
        np.savez(data_path, __expected__=np.asarray(eager), **inputs)
        result = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS, export_dir, data_path],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "fresh-process outputs match" in result.stdout
    return eager
