"""Rewrite dates written by people, in 11 languages and 3 styles, into ISO 8601 with attention.

"Sonntag, 22. November 2026", "22 nov. 2026", "November 22, 2026", "2026年11月22日" -> "2026-11-22".
The dates are written offline by Babel from the Unicode CLDR locale data. A bidirectional GRU reads
the characters (tensorflow-text tokenization in a tf.data pipeline, `keras_seqattn.export.Vocabulary`);
a GRU decoder with Bahdanau attention (`keras_seqattn.seq2seq.AttentionDecoder`) writes the ISO date,
trained with model.fit; held-out dates are decoded with beam search. The script saves the
alignment of one date as a heat map, and exports the translator as a SavedModel that takes and
returns strings, then translates a few dates by reloading it.

Run: python examples/translate_dates.py [--epochs 12] [--plot date_attention.png] [--export-dir DIR]
"""

import argparse
import datetime

import keras
import numpy as np
import tensorflow as tf
from babel.dates import format_date
from progress import step

import keras_seqattn as ksa
from keras_seqattn.decoding import beam_search
from keras_seqattn.export import export_translator
from keras_seqattn.seq2seq import AttentionDecoder
from keras_seqattn.text import StartEndPacker, Tokenizer, Vocabulary
from keras_seqattn.visualization import plot_attention

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "ja_JP", "zh_CN", "ru_RU"]
STYLES = ["full", "long", "medium"]  # CLDR's "short" (11/22/26 vs 22/11/26) is ambiguous: left out
FIRST_DAY, DAYS = datetime.date(1950, 1, 1), 36_525  # 1950-01-01 .. 2049-12-31
EMBED, ENCODER, DECODER, ATTENTION = 32, 64, 128, 64
MAX_SOURCE, MAX_TARGET, BEAM_WIDTH = 40, 11, 4  # characters; "YYYY-MM-DD" and END
SAMPLES = ["Sonntag, 22. November 2026", "22 nov. 2026", "November 22, 2026", "2026年11月22日"]


def make_pairs(days, rng):
    """(written date, ISO date) for each day offset, in a random locale and style."""
    dates = [FIRST_DAY + datetime.timedelta(days=int(d)) for d in days]
    written = [format_date(d, rng.choice(STYLES), locale=rng.choice(LOCALES)) for d in dates]
    return written, [d.isoformat() for d in dates]


class DateTranslator(keras.Model):
    """Embedding -> bidirectional GRU -> GRU decoder with Bahdanau attention. `call` is the
    teacher-forced training pass; `initial_state` and `step` the decoding pass of the searches."""

    def __init__(self, source_size, target_size, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(source_size, EMBED, mask_zero=True)
        self.encoder = keras.layers.Bidirectional(keras.layers.GRU(ENCODER, return_sequences=True, return_state=True))
        self.bridge = keras.layers.Dense(DECODER, activation="tanh")  # s₀ = tanh(W_s h←₁), as Bahdanau
        self.decoder = AttentionDecoder(
            keras.layers.GRUCell(DECODER),
            ksa.BahdanauAttention(ATTENTION),
            vocabulary_size=target_size,
            embedding_dim=EMBED,
        )

    def encode(self, source):
        outputs, _, backward = self.encoder(self.embedding(source))  # (batch, S, 2·ENCODER), masked
        return outputs, self.bridge(backward)

    def call(self, inputs, training=None):
        source, target_in = inputs
        outputs, state = self.encode(source)
        return self.decoder(target_in, outputs, encoder_state=state, training=training)

    def initial_state(self, source):
        outputs, state = self.encode(source)
        return self.decoder.initial_state(outputs, encoder_state=state)

    def step(self, token_ids, state, step):
        return self.decoder.step(token_ids, state, step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--test-size", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--plot", default=None, help="where to save an attention heat map (PNG); none by default")
    parser.add_argument("--export-dir", help="export the translator there as a SavedModel")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)

    # Data: the held-out dates are days never seen in training (in any language).
    rng = np.random.default_rng(0)
    days = rng.permutation(DAYS)
    train_source, train_target = make_pairs(days[: args.train_size], rng)
    test_source, test_target = make_pairs(days[args.train_size : args.train_size + args.test_size], rng)
    source_vocabulary = Vocabulary.from_texts(train_source, split="characters", lowercase=True)
    target_vocabulary = Vocabulary(list("0123456789-"), split="characters")

    tokenize = Tokenizer(source_vocabulary, sequence_length=MAX_SOURCE)  # padded with PAD = 0, or cut
    pack = StartEndPacker(MAX_TARGET, start_value=Vocabulary.START, end_value=Vocabulary.END)

    def prepare(written, iso):  # teacher forcing: START + date -> date + END
        target = target_vocabulary.encode(iso)
        target_in, target_out = pack(target, add_end_value=False), pack(target, add_start_value=False)
        return (tokenize(written), target_in), target_out  # (batch, 40), (batch, 11) x2

    train = tf.data.Dataset.from_tensor_slices((train_source, train_target)).shuffle(args.train_size, seed=0)
    train = train.batch(args.batch_size, drop_remainder=True).map(prepare).prefetch(tf.data.AUTOTUNE)

    model = DateTranslator(source_vocabulary.size, target_vocabulary.size)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )  # the encoder and the decoder's loop as one XLA program
    model.fit(train, epochs=args.epochs, verbose=2)

    # Held-out dates, decoded with beam search (one XLA-compiled loop over the decoder's step).
    @tf.function(input_signature=[tf.TensorSpec([None, MAX_SOURCE], tf.int32)])
    def translate(source):
        start = tf.fill([tf.shape(source)[0]], Vocabulary.START)
        sequences, _, alignments = beam_search(
            model.step,
            model.initial_state(source),
            start,
            end_id=Vocabulary.END,
            beam_width=BEAM_WIDTH,
            max_length=MAX_TARGET,
            return_attention_scores=True,
        )
        return target_vocabulary.decode(sequences[:, 0]), alignments[:, 0]  # the best hypotheses

    with step(f"translating {len(test_source)} held-out dates"):
        translations, alignments = translate(tokenize(tf.constant(test_source)))
    translations = [t.decode() for t in translations.numpy()]
    for written, iso, translation in list(zip(test_source, test_target, translations))[:5]:
        print(f"{written!r} -> {translation!r} (expected {iso!r})")
    accuracy = np.mean([t == iso for t, iso in zip(translations, test_target)])
    print(f"exact-match accuracy: {accuracy:.4f} on {len(test_source)} held-out dates (beam width {BEAM_WIDTH})")

    # The alignment of a held-out date: source characters across, ISO characters down (the first
    # date without CJK characters, which matplotlib's default font does not draw).
    if args.plot:
        row = next((i for i, written in enumerate(test_source) if max(map(ord, written)) < 0x3000), 0)
        source_tokens = list(test_source[row].lower())[:MAX_SOURCE]
        target_tokens = (list(translations[row]) + ["</s>"])[:MAX_TARGET]  # no END when cut at MAX
        plot_attention(
            alignments[row].numpy(),
            source_tokens,
            target_tokens,
            path=args.plot,
            title=f"{test_source[row]} -> {translations[row]}",
        )
        print(f"attention heat map saved to {args.plot}")

    # Export: a SavedModel that maps strings to strings, reloaded and run as a server would.
    if args.export_dir:
        with step(f"exporting to {args.export_dir}"):
            export_translator(
                model,
                args.export_dir,
                source_vocabulary,
                target_vocabulary,
                MAX_SOURCE,
                MAX_TARGET,
                beam_width=BEAM_WIDTH,
            )
        serve = tf.saved_model.load(args.export_dir).signatures["serving_default"]
        served = serve(text=tf.constant(SAMPLES))
        for written, translation in zip(SAMPLES, served["translation"].numpy()):
            print(f"served: {written!r} -> {translation.decode()!r}")


if __name__ == "__main__":
    main()
