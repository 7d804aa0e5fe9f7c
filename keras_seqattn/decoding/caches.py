"""Key/value caches for generation: allocated from the layers' configuration. Every Keras backend
(the caches are zeros of `keras.ops`)."""

from keras import ops

from keras_seqattn.layers.multi_head_attention import MultiHeadAttention
from keras_seqattn.layers.transformer_decoder import TransformerDecoder


def self_attention_caches(layers, batch_size, max_length, dtype=None):
    """Empty self-attention caches for a stack of built `TransformerDecoder`s (or
    `MultiHeadAttention`s): one `(batch_size, 2, max_length, num_key_value_heads, key_dim)` zero
    tensor per layer, in the layer's compute dtype unless `dtype` is given, for
    `self_attention_cache` (`cache`) and an update index that runs from 0.

    Example:
    >>> decoders = [TransformerDecoder(32, 4) for _ in range(2)]
    >>> for decoder in decoders:
    ...     _ = decoder(keras.ops.zeros((1, 3, 16)))
    >>> [tuple(cache.shape) for cache in self_attention_caches(decoders, batch_size=2, max_length=10)]
    [(2, 2, 10, 4, 4), (2, 2, 10, 4, 4)]
    """
    caches = []
    for layer in layers:
        attention = layer.self_attention if isinstance(layer, TransformerDecoder) else layer
        if not isinstance(attention, MultiHeadAttention) or not attention.built:
            raise ValueError(
                f"`layers` must be built TransformerDecoder or MultiHeadAttention layers. Received: {layer!r}"
            )
        shape = (batch_size, 2, max_length, attention.num_key_value_heads, attention.key_dim)
        caches.append(ops.zeros(shape, dtype or attention.compute_dtype))
    return caches
