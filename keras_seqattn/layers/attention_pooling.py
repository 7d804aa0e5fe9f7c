import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.attention import masked_softmax


@keras.saving.register_keras_serializable(package="keras_seqattn")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling: a sequence reduced to one vector per head by learned weights.

    with `units` (Yang et al., 2016):   e_t = u_wᵀ tanh(W h_t + b)
    without (Raffel & Ellis, 2015):    e_t = u_wᵀ h_t + b
    α = softmax_t(e),   c = Σ_t α_t h_t

    h_t is the input at step t, W the `(d, units)` kernel, b its bias and u_w the learned context
    vector. With `heads=r > 1`, u_w becomes a `(units, r)` matrix: the structured self-attention
    of Lin et al. (2017), A = softmax(W_s2 tanh(W_s1 Hᵀ)) `(r, T)` and M = A H `(r, d)`, with W_s1 =
    Wᵀ and W_s2 = u_wᵀ (Lin et al. have no bias: `use_bias=False`). With `penalty=p > 0`, the layer
    adds p · mean over the batch of ‖A Aᵀ − I‖_F² to its losses (their penalisation term, which
    pushes the heads to attend to different steps).

    Args:
        units: the size of the hidden layer of the score; None scores the inputs directly.
        heads: the number of attention heads (hops) r.
        use_bias: whether the score has the bias b.
        penalty: the coefficient p of the penalisation term; 0 adds none.
        kernel_initializer: initializer of W and u_w.

    Call arguments:
        inputs: `(batch, T, d)`.
        mask: optional `(batch, T)` boolean, True = a real step; filled from the inputs' Keras mask
            (e.g. `Embedding(mask_zero=True)`). Masked steps get exactly zero weight; a sequence
            with every step masked pools to zero.
        return_attention_scores: also return the weights α, `(batch, T)` (`(batch, heads, T)`
            with several heads).

    Returns `(batch, d)`, or `(batch, heads, d)` with several heads; and the weights when asked.

    Example:
    >>> tokens = keras.ops.convert_to_tensor([[4, 7, 2, 0, 0], [3, 3, 9, 1, 5]])
    >>> embedded = keras.layers.Embedding(10, 8, mask_zero=True)(tokens)
    >>> pooled, weights = AttentionPooling(units=16)(embedded, return_attention_scores=True)
    >>> pooled.shape, weights.shape, float(keras.ops.sum(weights[0, 3:]))
    (TensorShape([2, 8]), TensorShape([2, 5]), 0.0)

    References: Yang et al., "Hierarchical Attention Networks for Document Classification", NAACL
    2016, section 2.2; Raffel & Ellis, "Feed-Forward Networks with Attention Can Solve Some
    Long-Term Memory Problems", ICLR 2016 workshop; Lin et al., "A Structured Self-Attentive
    Sentence Embedding", ICLR 2017, sections 2.1-2.2.
    """

    def __init__(self, units=None, heads=1, use_bias=True, penalty=0.0, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        checks.check_positive_int("units", units, allow_none=True)
        checks.check_positive_int("heads", heads)
        checks.check_number("penalty", penalty, 0, strict=False)
        self.units = units
        self.heads = heads
        self.use_bias = bool(use_bias)
        self.penalty = float(penalty)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        checks.check_shape_rank("inputs", inputs_shape, (3,))
        depth = inputs_shape[-1]
        if self.units is not None:
            self.kernel = self.add_weight(name="kernel", shape=(depth, self.units), initializer=self.kernel_initializer)
            if self.use_bias:
                self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        score_bias = self.use_bias and self.units is None
        self.context = self.add_weight(
            name="context", shape=(self.units or depth, self.heads), initializer=self.kernel_initializer
        )
        if score_bias:
            self.bias = self.add_weight(name="bias", shape=(self.heads,), initializer="zeros")

    def call(self, inputs, mask=None, return_attention_scores=False):
        checks.check_rank("inputs", inputs, (3,))
        checks.check_mask_shape("mask", mask, tuple(inputs.shape[:2]))
        hidden = inputs
        if self.units is not None:
            hidden = ops.matmul(inputs, self.kernel)
            hidden = ops.tanh(hidden + self.bias if self.use_bias else hidden)
        scores = ops.einsum("btu,uh->bht", hidden, self.context)
        if self.use_bias and self.units is None:
            scores = scores + self.bias[None, :, None]
        weights = masked_softmax(scores, None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), 1))
        pooled = ops.einsum("bht,btd->bhd", ops.cast(weights, inputs.dtype), inputs)
        if self.penalty:
            self.add_loss(self.penalty * _redundancy(weights))
        weights = ops.cast(weights, self.compute_dtype)
        if self.heads == 1:
            pooled, weights = pooled[:, 0], weights[:, 0]
        return (pooled, weights) if return_attention_scores else pooled

    def compute_mask(self, inputs, mask=None):
        return None  # the time axis is pooled away

    def compute_output_shape(self, inputs_shape):
        batch, _, depth = inputs_shape
        return (batch, depth) if self.heads == 1 else (batch, self.heads, depth)

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False):
        pooled = keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)
        if not return_attention_scores:
            return pooled
        batch, steps = inputs.shape[:2]
        shape = (batch, steps) if self.heads == 1 else (batch, self.heads, steps)
        return pooled, keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            heads=self.heads,
            use_bias=self.use_bias,
            penalty=self.penalty,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


def _redundancy(weights):
    """mean over the batch of ‖A Aᵀ − I‖_F², for A `(batch, heads, T)` float32."""
    gram = ops.einsum("bht,bgt->bhg", weights, weights)
    identity = ops.eye(ops.shape(weights)[1], dtype="float32")
    return ops.mean(ops.sum(ops.square(gram - identity), axis=(1, 2)))
