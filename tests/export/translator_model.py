"""A small RNN translator with the protocol `export_translator` reads: `initial_state(source_ids)`
and `step(token_ids, state, step)`."""

import keras
import tensorflow as tf

from keras_seqattn import BahdanauAttention
from keras_seqattn.seq2seq import AttentionDecoder
from keras_seqattn.text import Vocabulary

SOURCE = ["hello world", "good morning", "guten Tag", "bonjour", "hola mundo", "12 - 05 - 2026"]
TARGET = ["HELLO WORLD", "GOOD MORNING", "GUTEN TAG", "BONJOUR", "HOLA MUNDO", "2026-05-12"]
MAX_SOURCE, MAX_TARGET = 12, 9


class TinyTranslator(keras.Model):
    def __init__(self, source_size, target_size, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(source_size, 8, mask_zero=True)
        self.encoder = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True))
        self.decoder = AttentionDecoder(
            keras.layers.GRUCell(16), BahdanauAttention(8), vocabulary_size=target_size, embedding_dim=8
        )

    def call(self, inputs):
        source, target_in = inputs
        return self.decoder(target_in, self.encoder(self.embedding(source)))

    def initial_state(self, source):
        return self.decoder.initial_state(self.encoder(self.embedding(source)))

    def step(self, token_ids, state, step):
        return self.decoder.step(token_ids, state, step)


def make_translator():
    keras.utils.set_random_seed(0)
    source_vocabulary = Vocabulary.from_texts(SOURCE, split="characters", lowercase=True)
    target_vocabulary = Vocabulary.from_texts(TARGET, split="characters")
    model = TinyTranslator(source_vocabulary.size, target_vocabulary.size)
    model((tf.zeros([1, MAX_SOURCE], tf.int32), tf.zeros([1, MAX_TARGET], tf.int32)))
    return model, source_vocabulary, target_vocabulary
