"""Greedy decoding: the most likely next token at every step. TensorFlow only."""

import keras
import tensorflow as tf

from keras_seqattn.decoding.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_seqattn")
class GreedySampler(Sampler):
    """Chooses the argmax token at each step, until `end_id` or `max_length` tokens (call
    arguments and result: `Sampler`).

    Example (a bigram table: 2 is followed by 1, then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> ksa.decoding.GreedySampler()(step_fn, {}, [2], end_id=0, max_length=3).sequences.numpy().tolist()
    [[1, 0, 0]]
    """

    def next_tokens(self, logits, step, seed, history, seen):
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
