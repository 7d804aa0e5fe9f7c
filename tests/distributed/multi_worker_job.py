"""One training job of tests/distributed/test_multi_worker.py: `python multi_worker_job.py MODEL OUT`
trains MODEL ("transformer" or "rnn") for a few epochs under MultiWorkerMirroredStrategy when
TF_CONFIG names a cluster (one process per worker), else on this process alone, and writes the
loss of every step to OUT (JSON; every worker writes its own), and for "rnn" what greedy and beam
search decode with the trained decoder."""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import keras_seqattn as ksa
from keras_seqattn.decoding import beam_search, greedy_search
from keras_seqattn.seq2seq import AttentionDecoder

VOCABULARY, SOURCE, TARGET, EXAMPLES, GLOBAL_BATCH, EPOCHS = 12, 6, 5, 64, 16, 2


def build(kind):
    source = keras.Input((SOURCE,), dtype="int32")
    target_in = keras.Input((TARGET,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, 16)(source)
    if kind == "transformer":
        encoded = ksa.TransformerEncoder(intermediate_dim=32, num_heads=2)(ksa.PositionalEncoding()(embedded))
        x = ksa.PositionalEncoding()(keras.layers.Embedding(VOCABULARY, 16)(target_in))
        logits = keras.layers.Dense(VOCABULARY)(ksa.TransformerDecoder(intermediate_dim=32, num_heads=2)(x, encoded))
    else:
        encoded = keras.layers.GRU(16, return_sequences=True, name="encoder")(embedded)
        logits = AttentionDecoder(
            keras.layers.GRUCell(16), ksa.BahdanauAttention(8), vocabulary_size=VOCABULARY, embedding_dim=8
        )(target_in, encoded)
    return keras.Model([source, target_in], logits)


def data():
    """Copy the source's first TARGET tokens (no padding: every replica's share weighs the same)."""
    rng = np.random.default_rng(0)
    source = rng.integers(3, VOCABULARY, size=(EXAMPLES, SOURCE)).astype("int32")
    target_out = source[:, :TARGET]
    target_in = np.concatenate([np.ones((EXAMPLES, 1), "int32"), target_out[:, :-1]], axis=1)
    dataset = tf.data.Dataset.from_tensor_slices(((source, target_in), target_out)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def main(kind, out):
    strategy = (
        tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ else tf.distribute.get_strategy()
    )
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build(kind)
        optimizer = keras.optimizers.SGD(0.5)
    per_token = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    # A custom loop: Keras 3.15's `fit` cannot run under this strategy (keras-team/keras#20585).
    @tf.function
    def train_step(inputs, targets):
        def replica_step(inputs, targets):
            with tf.GradientTape() as tape:
                per_example = tf.reduce_mean(per_token(targets, model(inputs, training=True)), axis=-1)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=(inputs, targets)), axis=None)

    batches = strategy.experimental_distribute_dataset(data())
    losses = [float(train_step(*batch)) for _ in range(EPOCHS) for batch in batches]
    result = {"loss": losses, "replicas": strategy.num_replicas_in_sync}
    if kind == "rnn":  # the trained decoder's searches, run by each worker as by one process
        decoder = next(layer for layer in model.layers if isinstance(layer, AttentionDecoder))
        encoder = keras.Model(model.inputs[0], model.get_layer("encoder").output)
        source = next(iter(data()))[0][0][:4]
        start = tf.ones([4], tf.int32)
        greedy = greedy_search(decoder.step, decoder.initial_state(encoder(source)), start, end_id=0, max_length=TARGET)
        beam = beam_search(
            decoder.step, decoder.initial_state(encoder(source)), start, end_id=0, beam_width=3, max_length=TARGET
        )
        result["greedy"], result["beam"] = greedy.sequences.numpy().tolist(), beam.sequences.numpy().tolist()
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
