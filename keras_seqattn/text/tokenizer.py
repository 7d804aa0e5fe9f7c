"""Text to ids inside a Keras model, with its vocabulary saved in the model's config."""

import keras
import tensorflow as tf

from keras_seqattn import checks
from keras_seqattn.text.vocabulary import Vocabulary


@keras.saving.register_keras_serializable(package="keras_seqattn")
class Tokenizer(keras.layers.Layer):
    """Tokenizes strings with a `Vocabulary` in the model's graph: a model that takes raw text.
    The vocabulary is part of the layer's config, so a `.keras` file restores it, and the layer
    runs in `tf.data` pipelines and exported SavedModels alike. TensorFlow backend only (string
    tensors).

    Args:
        vocabulary: a `keras_seqattn.export.Vocabulary` (or its config).
        sequence_length: None: ragged ids `(batch, None)` (for tf.data); an int: ids padded with
            `Vocabulary.PAD` or truncated to `(batch, sequence_length)` (for a model's input,
            then e.g. `Embedding(mask_zero=True)`).

    Call arguments:
        inputs: `(batch,)` strings.

    Example:
    >>> from keras_seqattn.text import Vocabulary
    >>> from keras_seqattn.text import Tokenizer
    >>> tokenizer = Tokenizer(Vocabulary.from_texts(["abc"]), sequence_length=4)
    >>> tokenizer(tf.constant(["cab", "abcabc"])).numpy().tolist()
    [[6, 4, 5, 0], [4, 5, 6, 4]]
    >>> tokenizer.detokenize(tf.constant([[6, 4, 5, 0]])).numpy().tolist()
    [b'cab']
    """

    def __init__(self, vocabulary, sequence_length=None, **kwargs):
        super().__init__(**kwargs)
        checks.check_tensorflow_backend("`Tokenizer`")
        if isinstance(vocabulary, dict):
            vocabulary = Vocabulary.from_config(vocabulary)
        if not isinstance(vocabulary, Vocabulary):
            raise ValueError(
                "`vocabulary` must be a keras_seqattn.export.Vocabulary or its config. "
                f"Received: vocabulary of type {type(vocabulary).__name__}"
            )
        checks.check_positive_int("sequence_length", sequence_length, allow_none=True)
        self.vocabulary, self.sequence_length = vocabulary, sequence_length
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, inputs):
        texts = tf.convert_to_tensor(inputs, tf.string)
        if texts.shape.rank != 1:
            raise ValueError(f"`inputs` must be strings of shape (batch,). Received: inputs.shape={texts.shape}")
        ids = self.vocabulary.encode(texts)
        if self.sequence_length is None:
            return ids
        return ids[:, : self.sequence_length].to_tensor(Vocabulary.PAD, shape=[None, self.sequence_length])

    def detokenize(self, ids):
        """Ids `(batch, length)` -> `(batch,)` strings (as `Vocabulary.decode`)."""
        return self.vocabulary.decode(ids)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.sequence_length), dtype="int32")

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary.get_config(),
            "sequence_length": self.sequence_length,
        }
