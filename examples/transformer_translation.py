"""Translate English number words into German number words with an encoder-decoder Transformer.

"three hundred and forty-five" -> "dreihundertfünfundvierzig": German says the units before the tens
("fünfundvierzig" is five-and-forty), so the alignment is not monotonic. The data come from
num2words, offline. English is split into words and German into characters by tensorflow-text
(`keras_seqattn.export.Vocabulary`) inside a tf.data pipeline; the model (embeddings +
PositionalEncoding + TransformerEncoder/TransformerDecoder stacks) trains with model.fit; held-out
numbers are decoded with beam search over the decoder's key/value caches. With --export-dir, the
translator is exported as a SavedModel that takes and returns strings, and reloaded to translate.

Run: python examples/transformer_translation.py [--epochs 15] [--train-size 7000] [--largest 9999]
     [--export-dir DIR]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from num2words import num2words
from progress import step

import keras_seqattn as ksa
from keras_seqattn.decoding import beam_search
from keras_seqattn.export import export_translator
from keras_seqattn.text import StartEndPacker, Tokenizer, Vocabulary

DIM, HEADS, FEEDFORWARD, LAYERS, DROPOUT = 64, 4, 256, 2, 0.1
BEAM_WIDTH = 4
SAMPLES = ["three hundred and forty-five", "nine thousand, nine hundred and ninety-nine", "seventeen"]


def make_pairs(numbers):
    return [num2words(n, lang="en") for n in numbers], [num2words(n, lang="de") for n in numbers]


class Translator(keras.Model):
    """Encoder-decoder Transformer. `call` is the teacher-forced training pass; `initial_state` and
    `step` are the cached decoding pass that beam search drives."""

    def __init__(self, source_size, target_size, max_target_length, **kwargs):
        super().__init__(**kwargs)
        self.max_target_length = max_target_length
        self.source_embedding = keras.layers.Embedding(source_size, DIM, mask_zero=True)
        self.target_embedding = keras.layers.Embedding(target_size, DIM, mask_zero=True)
        self.source_positions = ksa.PositionalEncoding()
        self.target_positions = ksa.PositionalEncoding()
        self.encoders = [ksa.TransformerEncoder(FEEDFORWARD, HEADS, dropout=DROPOUT) for _ in range(LAYERS)]
        self.decoders = [ksa.TransformerDecoder(FEEDFORWARD, HEADS, dropout=DROPOUT) for _ in range(LAYERS)]
        self.logits = keras.layers.Dense(target_size)

    def encode(self, source, training=None):
        x = self.source_positions(self.source_embedding(source))  # (batch, S, DIM), masked
        for encoder in self.encoders:
            x = encoder(x, training=training)
        return x

    def call(self, inputs, training=None):
        source, target_in = inputs  # (batch, S), (batch, T)
        encoded = self.encode(source, training)
        x = self.target_positions(self.target_embedding(target_in))
        for decoder in self.decoders:
            x = decoder(x, encoded, training=training)
        return self.logits(x)  # (batch, T, target_size)

    def initial_state(self, source):
        """The decoding state for `source` (batch, S): encoder outputs and, per decoder block, an
        empty self-attention cache and a cross-attention cache filled from the encoder."""
        encoded = self.encode(source)
        empty_self = tf.zeros([tf.shape(source)[0], 2, self.max_target_length, HEADS, DIM // HEADS])
        return {
            "encoded": encoded,
            "source_mask": source != 0,
            "self": [empty_self] * LAYERS,
            "cross": [decoder.compute_cross_attention_cache(encoded) for decoder in self.decoders],
        }

    def step(self, token_ids, state, step):
        """One decoding step: `token_ids` (rows,) -> logits (rows, target_size), new state."""
        x = self.target_positions(self.target_embedding(token_ids[:, None]), start_index=step)
        new_self = []
        for decoder, self_cache, cross_cache in zip(self.decoders, state["self"], state["cross"]):
            x, self_cache, _ = decoder(
                x,
                state["encoded"],
                encoder_padding_mask=state["source_mask"],
                self_attention_cache=self_cache,
                self_attention_cache_update_index=step,
                cross_attention_cache=cross_cache,
            )
            new_self.append(self_cache)
        return self.logits(x[:, 0]), {**state, "self": new_self}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train-size", type=int, default=7000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--largest", type=int, default=9_999, help="numbers from 0 to this")
    parser.add_argument("--export-dir", help="export the translator there as a SavedModel")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    # Data: distinct numbers, the held-out ones never seen in training.
    numbers = np.random.default_rng(0).permutation(args.largest + 1)
    train_en, train_de = make_pairs(numbers[: args.train_size])
    test_en, test_de = make_pairs(numbers[args.train_size : args.train_size + args.test_size])
    source_vocabulary = Vocabulary.from_texts(train_en, split="words")
    target_vocabulary = Vocabulary.from_texts(train_de, split="characters")
    max_source = max(len(s) for s in source_vocabulary.encode(tf.constant(train_en)).to_list())
    max_target = 1 + max(len(t) for t in train_de)  # the characters and END

    tokenize = Tokenizer(source_vocabulary, sequence_length=max_source)  # (batch, S), padded with PAD = 0
    pack = StartEndPacker(max_target, start_value=Vocabulary.START, end_value=Vocabulary.END)

    def prepare(english, german):  # teacher forcing: START + German -> German + END
        target = target_vocabulary.encode(german)
        target_in, target_out = pack(target, add_end_value=False), pack(target, add_start_value=False)
        return (tokenize(english), target_in), target_out  # target_in/out (batch, T); one shape, one XLA compile

    train = tf.data.Dataset.from_tensor_slices((train_en, train_de)).shuffle(len(train_en), seed=0)
    train = train.batch(args.batch_size, drop_remainder=True).map(prepare).prefetch(tf.data.AUTOTUNE)

    model = Translator(source_vocabulary.size, target_vocabulary.size, max_target)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        jit_compile=True,
    )
    model.fit(train, epochs=args.epochs, verbose=2)

    @tf.function(input_signature=[tf.TensorSpec([None, max_source], tf.int32)])
    def translate(source):  # traced once; the beam search inside is one XLA-compiled loop
        state = model.initial_state(source)
        start = tf.fill([tf.shape(source)[0]], Vocabulary.START)
        sequences, scores = beam_search(
            model.step, state, start, end_id=Vocabulary.END, beam_width=BEAM_WIDTH, max_length=max_target
        )
        return target_vocabulary.decode(sequences[:, 0]), scores[:, 0]  # the best hypotheses

    source = tokenize(tf.constant(test_en))
    translations, progress = [], keras.utils.Progbar(len(test_en), unit_name="number")
    for start in range(0, len(test_en), 250):
        translations += [t.decode() for t in translate(source[start : start + 250])[0].numpy()]
        progress.add(len(source[start : start + 250]))
    for english, german, translation in list(zip(test_en, test_de, translations))[:5]:
        print(f"{english!r} -> {translation!r} (expected {german!r})")
    accuracy = np.mean([t == g for t, g in zip(translations, test_de)])
    print(f"exact-match accuracy: {accuracy:.4f} on {len(test_en)} held-out numbers (beam width {BEAM_WIDTH})")

    # Export: a SavedModel that maps strings to strings, reloaded and run as a server would.
    if args.export_dir:
        with step(f"exporting to {args.export_dir}"):
            export_translator(
                model,
                args.export_dir,
                source_vocabulary,
                target_vocabulary,
                max_source,
                max_target,
                beam_width=BEAM_WIDTH,
            )
        serve = tf.saved_model.load(args.export_dir).signatures["serving_default"]
        served = serve(text=tf.constant(SAMPLES))
        for english, translation in zip(SAMPLES, served["translation"].numpy()):
            print(f"served: {english!r} -> {translation.decode()!r}")


if __name__ == "__main__":
    main()
