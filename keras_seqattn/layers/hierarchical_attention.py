import inspect

import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.layers.attention_pooling import AttentionPooling


@keras.saving.register_keras_serializable(package="keras_seqattn")
class HierarchicalAttention(keras.layers.Layer):
    """The two attention levels of a hierarchical attention network (Yang et al., 2016): words
    pooled into sentence vectors, sentence vectors pooled into a document vector.

    h_it = word_encoder(w_i1..w_iT)_t,    s_i = Σ_t α_it h_it,   α_i = AttentionPooling(h_i)
    h_i  = sentence_encoder(s_1..s_L)_i,  v   = Σ_i α_i h_i,     α   = AttentionPooling(h)

    with e = u_wᵀ tanh(W h + b) at each level (see `AttentionPooling`). The encoders are any Keras
    layers mapping `(batch, steps, features)` to `(batch, steps, features')`, typically
    `Bidirectional(GRU(units, return_sequences=True))` as in the paper; None pools the inputs
    directly.

    Args:
        word_encoder: the word-level encoder, or None.
        sentence_encoder: the sentence-level encoder, or None.
        word_units: `units` of the word-level `AttentionPooling` (None: a linear score).
        sentence_units: `units` of the sentence-level `AttentionPooling`.

    Call arguments:
        inputs: `(batch, sentences, words, d)`, e.g. the embedded word ids of documents.
        mask: optional `(batch, sentences, words)` boolean, True = a real word; filled from the
            inputs' Keras mask (`Embedding(mask_zero=True)` over `(batch, sentences, words)` ids).
            Padded words get zero word weight, a sentence with no word is padding and gets zero
            sentence weight, and a document with no word pools to zero.
        return_attention_scores: also return the sentence weights `(batch, sentences)` and the
            word weights `(batch, sentences, words)`.

    Returns the document vector `(batch, d')` and, when asked, the two levels' weights.

    Example:
    >>> documents = keras.ops.convert_to_tensor([[[5, 3, 0], [2, 0, 0]], [[7, 7, 1], [0, 0, 0]]])
    >>> embedded = keras.layers.Embedding(10, 8, mask_zero=True)(documents)  # (2, 2, 3, 8)
    >>> han = HierarchicalAttention(keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True)),
    ...                             keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True)),
    ...                             word_units=6, sentence_units=6)
    >>> document, sentence_weights, word_weights = han(embedded, return_attention_scores=True)
    >>> document.shape, sentence_weights.shape, word_weights.shape
    (TensorShape([2, 8]), TensorShape([2, 2]), TensorShape([2, 2, 3]))
    >>> float(sentence_weights[1, 1])  # the second document's second sentence is padding
    0.0

    Reference: Yang, Yang, Dyer, He, Smola & Hovy, "Hierarchical Attention Networks for Document
    Classification", NAACL 2016, section 2.
    """

    def __init__(self, word_encoder=None, sentence_encoder=None, word_units=None, sentence_units=None, **kwargs):
        super().__init__(**kwargs)
        for name, encoder in (("word_encoder", word_encoder), ("sentence_encoder", sentence_encoder)):
            if encoder is not None and not isinstance(encoder, keras.layers.Layer):
                raise ValueError(f"`{name}` must be a Keras layer or None. Received: {name}={encoder!r}")
        checks.check_positive_int("word_units", word_units, allow_none=True)
        checks.check_positive_int("sentence_units", sentence_units, allow_none=True)
        self.word_encoder = word_encoder
        self.sentence_encoder = sentence_encoder
        self.word_units = word_units
        self.sentence_units = sentence_units
        self.word_pooling = AttentionPooling(word_units, dtype=self.dtype_policy, name="word_pooling")
        self.sentence_pooling = AttentionPooling(sentence_units, dtype=self.dtype_policy, name="sentence_pooling")
        self.supports_masking = True

    def build(self, inputs_shape):
        checks.check_shape_rank("inputs", inputs_shape, (4,))
        shape = _build_level(self.word_encoder, self.word_pooling, (None, *inputs_shape[2:]))
        _build_level(self.sentence_encoder, self.sentence_pooling, (inputs_shape[0], inputs_shape[1], shape[-1]))

    def call(self, inputs, mask=None, return_attention_scores=False):
        checks.check_rank("inputs", inputs, (4,))
        checks.check_mask_shape("mask", mask, tuple(inputs.shape[:3]))
        batch, sentences, words = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        word_mask = None if mask is None else ops.reshape(ops.cast(mask, "bool"), (-1, words))
        hidden = _encode(self.word_encoder, ops.reshape(inputs, (-1, words, inputs.shape[-1])), word_mask)
        vectors, word_weights = self.word_pooling(hidden, mask=word_mask, return_attention_scores=True)
        vectors = ops.reshape(vectors, (batch, sentences, vectors.shape[-1]))
        sentence_mask = None if mask is None else ops.any(ops.cast(mask, "bool"), axis=-1)
        hidden = _encode(self.sentence_encoder, vectors, sentence_mask)
        document, sentence_weights = self.sentence_pooling(hidden, mask=sentence_mask, return_attention_scores=True)
        if not return_attention_scores:
            return document
        return document, sentence_weights, ops.reshape(word_weights, (batch, sentences, words))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            word_encoder=None if self.word_encoder is None else keras.saving.serialize_keras_object(self.word_encoder),
            sentence_encoder=None
            if self.sentence_encoder is None
            else keras.saving.serialize_keras_object(self.sentence_encoder),
            word_units=self.word_units,
            sentence_units=self.sentence_units,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("word_encoder", "sentence_encoder"):
            if config[name] is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def _build_level(encoder, pooling, shape):
    """Build one level for inputs of `shape`; return the shape of what it pools."""
    if encoder is not None:
        if not encoder.built:
            encoder.build(shape)
        shape = tuple(encoder.compute_output_shape(shape))
    pooling.build(shape)
    return shape


def _encode(encoder, x, mask):
    """`encoder(x)`, given `mask` when its `call` takes one (RNNs and Bidirectional do)."""
    if encoder is None:
        return x
    if mask is not None and "mask" in inspect.signature(encoder.call).parameters:
        return encoder(x, mask=mask)
    return encoder(x)
