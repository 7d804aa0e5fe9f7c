import keras

from keras_seqattn import checks
from keras_seqattn.layers import transformer_block as parts


@keras.saving.register_keras_serializable(package="keras_seqattn")
class TransformerEncoder(parts.TransformerBlock):
    """One Transformer encoder block (Vaswani et al., 2017), a drop-in for
    `keras_hub.layers.TransformerEncoder`.

    post-norm (default):      x = LN(x + MHA(x, x));        y = LN(x + FFN(x))
    pre-norm (normalize_first): x = x + MHA(LN(x), LN(x));  y = x + FFN(LN(x))
    FFN(x) = activation(x W₁ + b₁) W₂ + b₂   (d -> intermediate_dim -> d)

    Same constructor and call arguments, sublayers and weights (in the same order) as keras-hub's:
    `ours.set_weights(hub_layer.get_weights())` gives the same outputs at the unpadded positions.
    Beyond keras-hub: `return_attention_scores=True` returns the self-attention weights, and padded
    positions attend nothing (a zero attention output, never NaN) instead of attending as usual.

    Args:
        intermediate_dim: width of the feed-forward hidden layer.
        num_heads: attention heads; the input width d must be a multiple.
        dropout: dropout rate after attention, after the feed-forward and on the attention weights.
        activation: of the feed-forward hidden layer.
        layer_norm_epsilon: of the layer normalisations.
        kernel_initializer: of the dense layers.
        bias_initializer: of the dense layers.
        normalize_first: pre-norm instead of post-norm.
        flash_attention: the attention path (None: the policy's; see `MultiHeadAttention`). Beyond keras-hub.
        rope_max_wavelength: rotary embeddings inside the self-attention, as
            `MultiHeadAttention`'s. Beyond keras-hub.
        alibi_bias_max: ALiBi inside the self-attention, as `MultiHeadAttention`'s.
        sliding_window: the self-attention's sliding window, as `MultiHeadAttention`'s.

    Call arguments:
        inputs: `(batch, T, d)`.
        padding_mask: `(batch, T)` boolean, True = a real token; defaults to the inputs' Keras mask.
        attention_mask: `(batch, T, T)` boolean, True = may attend; combined with the padding mask.
        training: applies dropout when True.
        return_attention_scores: also return the weights `(batch, num_heads, T, T)`.

    Example:
    >>> x = keras.random.normal((2, 7, 16))
    >>> TransformerEncoder(intermediate_dim=32, num_heads=4)(x).shape
    TensorShape([2, 7, 16])

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.1; pre-norm:
    Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020.
    """

    def build(self, inputs_shape):
        checks.check_shape_rank("inputs", inputs_shape, (3,))
        hidden_dim = inputs_shape[-1]
        self.self_attention_layer = self.attention_layer("self_attention_layer", self.head_size(hidden_dim))
        self.self_attention_layer.build(inputs_shape, inputs_shape)
        self.self_attention_layer_norm, self.self_attention_dropout = self.build_norm_and_dropout(
            "self_attention", inputs_shape
        )
        self.feedforward_layer_norm, self.feedforward_dropout = self.build_norm_and_dropout("feedforward", inputs_shape)
        self.build_feedforward(hidden_dim, inputs_shape)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None, return_attention_scores=False):
        checks.check_rank("inputs", inputs, (3,))
        padding = parts.padding_of(inputs, padding_mask)

        def attend(x):
            return parts.as_tuple(
                self.self_attention_layer(
                    x,
                    x,
                    query_mask=padding,
                    value_mask=padding,
                    attention_mask=attention_mask,
                    return_attention_scores=return_attention_scores,
                    training=training,
                )
            )

        x, scores = self.residual(inputs, attend, self.self_attention_layer_norm, self.self_attention_dropout, training)
        x, _ = self.residual(x, self.feedforward, self.feedforward_layer_norm, self.feedforward_dropout, training)
        return (x, scores[0]) if return_attention_scores else x

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def compute_output_spec(self, inputs, return_attention_scores=False, **kwargs):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        batch, length = inputs.shape[0], inputs.shape[1]
        return output, keras.KerasTensor((batch, self.num_heads, length, length), dtype=self.compute_dtype)
