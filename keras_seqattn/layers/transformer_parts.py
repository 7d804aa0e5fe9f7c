"""What the Transformer encoder and decoder blocks share: their arguments and config, the residual
sub-block (pre- or post-norm) and the position-wise feed-forward network."""

import keras

from keras_seqattn.layers.multi_head_attention import MultiHeadAttention, clone_initializer
from keras_seqattn.ops import checks
from keras_seqattn.ops.masks import implicit_mask


def head_size(hidden_dim, num_heads):
    if hidden_dim is None or hidden_dim < num_heads or hidden_dim % num_heads:
        raise ValueError(
            "The hidden size must be a positive multiple of `num_heads`. "
            f"Received: hidden size={hidden_dim}, num_heads={num_heads}")
    return hidden_dim // num_heads


def padding_of(sequence, explicit):
    """The explicit padding mask if given, else the sequence's implicit Keras mask (or None)."""
    return explicit if explicit is not None else implicit_mask(sequence)


def residual(block, x, sublayer, norm, dropout, training):
    """x + Dropout(sublayer(x)) with LayerNorm before the sublayer (`normalize_first`) or after
    the sum (the original post-norm). `sublayer` returns a tuple whose first item is its output;
    the rest is returned alongside."""
    inputs = norm(x) if block.normalize_first else x
    output, *extra = sublayer(inputs)
    output = dropout(output, training=training) + x
    return (output if block.normalize_first else norm(output)), extra


def build_feedforward(block, hidden_dim, shape):
    """`block.feedforward_intermediate_dense` (d -> intermediate_dim, activation) and
    `block.feedforward_output_dense` (intermediate_dim -> d), built for inputs of `shape`."""
    make = lambda units, activation, name: keras.layers.Dense(
        units, activation=activation, name=name, dtype=block.dtype_policy,
        kernel_initializer=clone_initializer(block.kernel_initializer),
        bias_initializer=clone_initializer(block.bias_initializer))
    block.feedforward_intermediate_dense = make(block.intermediate_dim, block.activation,
                                                "feedforward_intermediate_dense")
    block.feedforward_intermediate_dense.build(shape)
    block.feedforward_output_dense = make(hidden_dim, None, "feedforward_output_dense")
    block.feedforward_output_dense.build(tuple(shape[:-1]) + (block.intermediate_dim,))


def feedforward(block, x):
    return (block.feedforward_output_dense(block.feedforward_intermediate_dense(x)),)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def norm_and_dropout(block, prefix, shape):
    """A LayerNormalization named `{prefix}_layer_norm`, built, and a Dropout at the block's rate."""
    norm = keras.layers.LayerNormalization(epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy,
                                           name=f"{prefix}_layer_norm")
    norm.build(shape)
    return norm, keras.layers.Dropout(block.dropout, dtype=block.dtype_policy, name=f"{prefix}_dropout")


class TransformerBlock(keras.layers.Layer):
    """The constructor arguments and config of keras-hub's Transformer blocks, shared by
    `TransformerEncoder` and `TransformerDecoder`."""

    def __init__(self, intermediate_dim, num_heads, dropout=0, activation="relu",
                 layer_norm_epsilon=1e-05, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", normalize_first=False, flash=None, rope_max_wavelength=None,
                 alibi_bias_max=None, sliding_window=None, **kwargs):
        super().__init__(**kwargs)
        checks.check_positive_int("intermediate_dim", intermediate_dim)
        checks.check_positive_int("num_heads", num_heads)
        checks.check_rate("dropout", dropout)
        checks.check_flash(flash)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = normalize_first
        self.flash = flash
        self.rope_max_wavelength = rope_max_wavelength
        self.alibi_bias_max = alibi_bias_max
        self.sliding_window = sliding_window
        self.supports_masking = True

    def attention_layer(self, name, head_dim, self_attention=True):
        """A MultiHeadAttention sublayer with the block's heads, dropout, initializers and path;
        a self-attention one with the block's position methods and window too."""
        positions = dict(rope_max_wavelength=self.rope_max_wavelength, alibi_bias_max=self.alibi_bias_max,
                         sliding_window=self.sliding_window) if self_attention else {}
        return MultiHeadAttention(
            num_heads=self.num_heads, key_dim=head_dim, dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            flash=self.flash, dtype=self.dtype_policy, name=name, **positions)

    def get_config(self):
        config = super().get_config()
        config.update(
            intermediate_dim=self.intermediate_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            activation=keras.activations.serialize(self.activation),
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            normalize_first=self.normalize_first,
            flash=self.flash,
            rope_max_wavelength=self.rope_max_wavelength,
            alibi_bias_max=self.alibi_bias_max,
            sliding_window=self.sliding_window,
        )
        return config
