import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.positions import alibi_slopes


@keras.saving.register_keras_serializable(package="keras_seqattn")
class AlibiBias(keras.layers.Layer):
    """ALiBi (Press et al., 2022) added to attention scores, a drop-in for
    `keras_hub.layers.AlibiBias` (the same argument and values).

    scores[b, h, i, j] + m_h · (j - (S - 1)),   m_h the slopes of `ops.alibi_slopes(heads, alibi_bias_max)`

    The bias is linear in the key position; a per-row constant away from m_h · (j - i), so the
    softmax is the same. Inside attention, prefer `MultiHeadAttention(alibi_bias_max=...)` or
    `scaled_dot_product_attention(alibi_slopes=...)`, which add m_h · (j - i) per tile and never
    build this `(heads, T, S)` bias.

    Args:
        alibi_bias_max: the slopes' exponent (8 in the paper).

    Call arguments:
        attention_scores: `(batch, heads, T, S)`.

    Example:
    >>> AlibiBias()(keras.ops.zeros((1, 2, 1, 3)))[0, :, 0].numpy().tolist()
    [[-0.125, -0.0625, 0.0], [-0.0078125, -0.00390625, 0.0]]

    Reference: Press, Smith & Lewis, "Train Short, Test Long: Attention with Linear Biases Enables
    Input Length Extrapolation", ICLR 2022, section 3.
    """

    def __init__(self, alibi_bias_max=8, **kwargs):
        super().__init__(**kwargs)
        checks.check_number("alibi_bias_max", alibi_bias_max, 0, strict=True)
        self.alibi_bias_max = alibi_bias_max

    def call(self, attention_scores):
        checks.check_rank("attention_scores", attention_scores, (4,))
        heads, keys = attention_scores.shape[1], ops.shape(attention_scores)[-1]
        slopes = ops.convert_to_tensor(alibi_slopes(heads, self.alibi_bias_max), self.compute_dtype)
        distance = ops.cast(ops.arange(keys) - (keys - 1), self.compute_dtype)
        return attention_scores + slopes[None, :, None, None] * distance[None, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(alibi_bias_max=self.alibi_bias_max)
        return config
