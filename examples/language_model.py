"""A small decoder-only language model with rotary embeddings: it learns to count in English words.

The text is written here by num2words: runs of consecutive numbers, "three hundred and
ninety-eight, three hundred and ninety-nine, four hundred, four hundred and one, ...", cut into
windows of characters. The model (character embeddings, `TransformerDecoder` blocks with rotary
position embeddings inside attention, a projection to the characters) trains with model.fit on
tf.data to predict each next character; it reports its perplexity on held-out windows, then
continues prompts with greedy search, top-k and top-p sampling and beam search, each prompt
prefilled through the decoder stack in one call and continued through its key/value caches.
With --export-dir it exports a SavedModel that takes a prompt string and returns the
continuation, reloaded to continue a few prompts.

Run: python examples/language_model.py [--epochs 6] [--train-size 6000] [--export-dir DIR]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from num2words import num2words
from progress import step

import keras_seqattn as ksa
from keras_seqattn.decoding import beam_search, greedy_search, sample_search, self_attention_caches
from keras_seqattn.export import export_generator
from keras_seqattn.text import Vocabulary

DIM, HEADS, FEEDFORWARD, LAYERS, WINDOW, MAX_CACHE = 96, 4, 256, 3, 96, 256
PROMPTS = [
    "one hundred and eight, one hundred and nine, ",
    "nine hundred and ninety-eight, ",
    "forty-one, forty-two, forty-",
]


def make_text(starts):
    """A run of 12 consecutive numbers in words from each start, joined by commas."""
    return [", ".join(num2words(n) for n in range(start, start + 12)) + ", " for start in starts]


class LanguageModel(keras.Model):
    """Embedding -> TransformerDecoder blocks (causal, rotary embeddings) -> logits. `call` scores
    a whole sequence (training); `initial_state`, `prefill` and `step` generate through caches."""

    def __init__(self, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(vocabulary_size, DIM)
        self.blocks = [
            ksa.TransformerDecoder(FEEDFORWARD, HEADS, normalize_first=True, rope_max_wavelength=10_000)
            for _ in range(LAYERS)
        ]
        self.norm = keras.layers.LayerNormalization()
        self.logits = keras.layers.Dense(vocabulary_size)

    def call(self, ids):  # (batch, T) -> (batch, T, vocabulary)
        x = self.embedding(ids)
        for block in self.blocks:
            x = block(x)
        return self.logits(self.norm(x))

    def initial_state(self, batch_size):
        return {"caches": self_attention_caches(self.blocks, batch_size, MAX_CACHE)}

    def _cached(self, ids, state, index):
        x, caches = self.embedding(ids), []
        for block, cache in zip(self.blocks, state["caches"]):
            x, cache = block(x, self_attention_cache=cache, self_attention_cache_update_index=index)
            caches.append(cache)
        return self.logits(self.norm(x)), {"caches": caches}

    def prefill(self, prompt_ids, state):  # the whole prompt at once, from position 0
        return self._cached(prompt_ids, state, 0)[1]

    def step(self, token_ids, state, step):  # one token at position `step`
        logits, state = self._cached(token_ids[:, None], state, step)
        return logits[:, 0], state


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--export-dir", help="export a prompt-to-text SavedModel there")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    rng = np.random.default_rng(0)
    starts = rng.permutation(990)  # held-out windows start where no training window starts
    train_starts, test_starts = starts[:890], rng.choice(starts[890:], args.test_size)
    with step(f"writing {args.train_size} + {args.test_size} runs of numbers"):
        train_text = make_text(rng.choice(train_starts, args.train_size))
        test_text = make_text(test_starts)
    vocabulary = Vocabulary.from_texts(train_text + PROMPTS, split="characters")

    def windows(texts):  # the first WINDOW + 1 characters: inputs, and the same shifted by one
        ids = vocabulary.encode(tf.constant(texts))[:, : WINDOW + 1].to_tensor(shape=[None, WINDOW + 1])
        return ids[:, :-1], ids[:, 1:]

    train = tf.data.Dataset.from_tensor_slices(windows(train_text)).shuffle(args.train_size, seed=0)
    train = train.batch(args.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    model = LanguageModel(vocabulary.size)
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=Vocabulary.PAD),
    )
    model.fit(train, epochs=args.epochs, verbose=2)

    inputs, targets = windows(test_text)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=Vocabulary.PAD)(
        targets, model.predict(inputs, verbose=0)
    )
    print(f"held-out perplexity: {float(np.exp(loss)):.3f} per character ({vocabulary.size} ids)")

    # Counting, checked: prompted with the first four numbers of a held-out run, does greedy
    # search write the fifth next?
    runs = [text.split(", ") for text in test_text]
    prompts = vocabulary.encode(tf.constant([", ".join(run[:4]) + ", " for run in runs]))
    found = greedy_search(
        model.step,
        model.initial_state(len(runs)),
        None,
        end_id=Vocabulary.END,
        max_length=40,
        prompt=prompts,
        prefill_fn=model.prefill,
    )
    written = [
        vocabulary.decode(tf.constant([ids[start:end]])).numpy()[0].decode()
        for ids, start, end in zip(found.sequences.numpy(), prompts.row_lengths().numpy(), found.lengths.numpy())
    ]
    correct = np.mean([text.startswith(run[4] + ", ") for text, run in zip(written, runs)])
    print(f"next number correct: {correct:.4f} of {len(runs)} held-out runs")

    prompt = vocabulary.encode(tf.constant(PROMPTS))  # ragged: each prompt continues from its own end
    searches = {
        "greedy": lambda: greedy_search(
            model.step,
            model.initial_state(3),
            None,
            end_id=Vocabulary.END,
            max_length=48,
            prompt=prompt,
            prefill_fn=model.prefill,
        ),
        "top-k 5": lambda: sample_search(
            model.step,
            model.initial_state(3),
            None,
            end_id=Vocabulary.END,
            max_length=48,
            prompt=prompt,
            prefill_fn=model.prefill,
            top_k=5,
            seed=0,
        ),
        "top-p 0.9": lambda: sample_search(
            model.step,
            model.initial_state(3),
            None,
            end_id=Vocabulary.END,
            max_length=48,
            prompt=prompt,
            prefill_fn=model.prefill,
            top_p=0.9,
            seed=0,
        ),
        "beam 4": lambda: beam_search(
            model.step,
            model.initial_state(3),
            None,
            end_id=Vocabulary.END,
            beam_width=4,
            max_length=48,
            prompt=prompt,
            prefill_fn=model.prefill,
        ),
    }
    for name, run in searches.items():
        found = run()
        sequences = found.sequences.numpy() if name != "beam 4" else found.sequences.numpy()[:, 0]
        for text, ids in zip(PROMPTS, sequences):
            continuation = vocabulary.decode(tf.constant([ids[len(vocabulary.encode(tf.constant([text]))[0]) :]]))
            print(f"{name}: {text!r} -> {continuation.numpy()[0].decode()!r}")

    if args.export_dir:
        with step(f"exporting to {args.export_dir}"):
            export_generator(model, args.export_dir, vocabulary, max_prompt_length=128, max_new_tokens=48)
        serve = tf.saved_model.load(args.export_dir).signatures["serving_default"]
        for text, continuation in zip(PROMPTS, serve(prompt=tf.constant(PROMPTS))["text"].numpy()):
            print(f"served: {text!r} -> {continuation.decode()!r}")


if __name__ == "__main__":
    main()
