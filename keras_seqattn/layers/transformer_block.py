"""The base of the Transformer encoder and decoder blocks: their arguments and config, the residual
sub-block (pre- or post-norm) and the position-wise feed-forward network. Every Keras backend."""

import keras

from keras_seqattn import checks, deprecation
from keras_seqattn.layers.multi_head_attention import MultiHeadAttention, clone_initializer
from keras_seqattn.ops.masks import implicit_mask


def padding_of(sequence, explicit):
    """The explicit padding mask if given, else the sequence's implicit Keras mask (or None)."""
    return explicit if explicit is not None else implicit_mask(sequence)


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


class TransformerBlock(keras.layers.Layer):
    """The constructor arguments and config of keras-hub's Transformer blocks, shared by
    `TransformerEncoder` and `TransformerDecoder`, and the sublayers both build."""

    flash = deprecation.renamed_attribute("flash", "flash_attention")

    def __init__(
        self,
        intermediate_dim,
        num_heads,
        dropout=0,
        activation="relu",
        layer_norm_epsilon=1e-05,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first=False,
        flash_attention=None,
        rope_max_wavelength=None,
        alibi_bias_max=None,
        sliding_window=None,
        **kwargs,
    ):
        flash_attention = deprecation.take_renamed(
            kwargs, "flash", "flash_attention", flash_attention, type(self).__name__
        )
        super().__init__(**kwargs)
        checks.check_positive_int("intermediate_dim", intermediate_dim)
        checks.check_positive_int("num_heads", num_heads)
        checks.check_rate("dropout", dropout)
        checks.check_flash_attention(flash_attention)
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.normalize_first = normalize_first
        self.flash_attention = flash_attention
        self.rope_max_wavelength = rope_max_wavelength
        self.alibi_bias_max = alibi_bias_max
        self.sliding_window = sliding_window
        self.supports_masking = True

    def attention_layer(self, name, head_dim, self_attention=True):
        """A MultiHeadAttention sublayer with the block's heads, dropout, initializers and path;
        a self-attention one with the block's position methods and window too."""
        positions = (
            dict(
                rope_max_wavelength=self.rope_max_wavelength,
                alibi_bias_max=self.alibi_bias_max,
                sliding_window=self.sliding_window,
            )
            if self_attention
            else {}
        )
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=head_dim,
            dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            flash_attention=self.flash_attention,
            dtype=self.dtype_policy,
            name=name,
            **positions,
        )

    def head_size(self, hidden_dim):
        if hidden_dim is None or hidden_dim < self.num_heads or hidden_dim % self.num_heads:
            raise ValueError(
                "The hidden size must be a positive multiple of `num_heads`. "
                f"Received: hidden size={hidden_dim}, num_heads={self.num_heads}"
            )
        return hidden_dim // self.num_heads

    def residual(self, x, sublayer, norm, dropout, training):
        """x + Dropout(sublayer(x)) with LayerNorm before the sublayer (`normalize_first`) or after
        the sum (the original post-norm). `sublayer` returns a tuple whose first item is its
        output; the rest is returned alongside."""
        inputs = norm(x) if self.normalize_first else x
        output, *extra = sublayer(inputs)
        output = dropout(output, training=training) + x
        return (output if self.normalize_first else norm(output)), extra

    def build_norm_and_dropout(self, prefix, shape):
        """A LayerNormalization named `{prefix}_layer_norm`, built, and a Dropout at the block's rate."""
        norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=f"{prefix}_layer_norm"
        )
        norm.build(shape)
        return norm, keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=f"{prefix}_dropout")

    def build_feedforward(self, hidden_dim, shape):
        """`feedforward_intermediate_dense` (d -> intermediate_dim, activation) and
        `feedforward_output_dense` (intermediate_dim -> d), built for inputs of `shape`."""

        def dense(units, activation, name):
            return keras.layers.Dense(
                units,
                activation=activation,
                name=name,
                dtype=self.dtype_policy,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
            )

        self.feedforward_intermediate_dense = dense(
            self.intermediate_dim, self.activation, "feedforward_intermediate_dense"
        )
        self.feedforward_intermediate_dense.build(shape)
        self.feedforward_output_dense = dense(hidden_dim, None, "feedforward_output_dense")
        self.feedforward_output_dense.build(tuple(shape[:-1]) + (self.intermediate_dim,))

    def feedforward(self, x):
        return (self.feedforward_output_dense(self.feedforward_intermediate_dense(x)),)

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
            flash_attention=self.flash_attention,
            rope_max_wavelength=self.rope_max_wavelength,
            alibi_bias_max=self.alibi_bias_max,
            sliding_window=self.sliding_window,
        )
        return config
