"""A model built from these layers trains under tf.distribute.MirroredStrategy with the loss
trajectory of one device. Two logical CPUs must be configured before TensorFlow starts its
runtime, so the comparison runs in a fresh process."""

import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_seqattn

    def build():
        tokens = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(20, 16, mask_zero=True)(tokens)
        x = keras_seqattn.PositionalEncoding()(x)
        x = keras_seqattn.TransformerEncoder(intermediate_dim=32, num_heads=2)(x)
        x = keras_seqattn.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
        return keras.Model(tokens, keras.layers.Dense(20)(x))

    def train(strategy, weights):
        with strategy.scope():
            model = build()
            model.set_weights(weights)
            model.compile(keras.optimizers.Adam(1e-2),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        data = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(16)
        return model.fit(data, epochs=4, verbose=0).history["loss"]

    rng = np.random.default_rng(0)
    inputs = rng.integers(1, 20, size=(64, 7)).astype("int32")
    inputs[::2, 5:] = 0  # padding, the same amount in each half-batch a replica gets
    targets = np.sort(inputs, axis=1)
    keras.utils.set_random_seed(0)
    weights = build().get_weights()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    single = train(tf.distribute.get_strategy(), weights)
    distributed = train(mirrored, weights)
    print("single", single)
    print("mirrored", distributed)
    assert single[-1] < single[0]
    np.testing.assert_allclose(distributed, single, rtol=1e-4)
    print("same loss trajectory")
    """
)


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "same loss trajectory" in result.stdout
