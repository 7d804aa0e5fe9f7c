"""Learn to sort sequences of digits with self-attention, trained with model.fit on tf.data.

Each input is 4 to 10 digits (tokens 1..9, 0 pads); the target is the same digits in ascending
order. Sorting needs every position to look at all the others (to count how many digits are
smaller), which is what attention gives: an Embedding with mask_zero, a PositionalEncoding, two
blocks of MultiHeadAttention + feed-forward, and a per-position softmax. The padding mask flows
from the Embedding through every layer.

Run: python examples/sort_digits.py [--epochs 8] [--train-size 20000]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import keras_seqattn as ksa

MAX_LENGTH, VOCAB, DIM, HEADS = 10, 10, 64, 4


def make_data(size, rng):
    lengths = rng.integers(4, MAX_LENGTH + 1, size)
    digits = rng.integers(1, VOCAB, (size, MAX_LENGTH))
    present = np.arange(MAX_LENGTH)[None, :] < lengths[:, None]
    inputs = np.where(present, digits, 0)  # (size, MAX_LENGTH), 0 = padding
    targets = np.where(present, np.sort(np.where(present, digits, VOCAB), axis=1), 0)
    return inputs.astype("int32"), targets.astype("int32")


def build_model():
    tokens = keras.Input((None,), dtype="int32")  # (batch, T)
    x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True)(tokens)  # (batch, T, DIM), masked
    x = ksa.PositionalEncoding()(x)
    for _ in range(2):
        attended = ksa.MultiHeadAttention(num_heads=HEADS, key_dim=DIM // HEADS)(x, x)
        x = keras.layers.LayerNormalization()(x + attended)
        hidden = keras.layers.Dense(2 * DIM, activation="relu")(x)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(DIM)(hidden))
    logits = keras.layers.Dense(VOCAB)(x)  # (batch, T, VOCAB)
    return keras.Model(tokens, logits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    train = tf.data.Dataset.from_tensor_slices(make_data(args.train_size, rng))
    train = train.shuffle(10000, seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)
    test_inputs, test_targets = make_data(1000, rng)

    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    model.fit(train, epochs=args.epochs)

    predicted = np.argmax(model.predict(test_inputs, verbose=0), axis=-1)
    present = test_inputs > 0
    predicted = np.where(present, predicted, 0)
    print("example:", test_inputs[0][present[0]], "->", predicted[0][present[0]])
    print(f"token accuracy: {np.mean(predicted[present] == test_targets[present]):.4f}")
    print(f"exact-match accuracy: {np.mean(np.all(predicted == test_targets, axis=1)):.4f}")


if __name__ == "__main__":
    main()
