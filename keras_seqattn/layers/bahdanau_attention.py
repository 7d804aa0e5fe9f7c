import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.layers.score_attention import ScoreAttention
from keras_seqattn.ops.rnn_attention import additive_attention
from keras_seqattn.ops.scores import additive_score


@keras.saving.register_keras_serializable(package="keras_seqattn")
class BahdanauAttention(ScoreAttention):
    """Additive attention with learned projections (Bahdanau et al., 2015).

    score(s, h) = vᵀ tanh(W₁ s + W₂ h),  α = softmax over the source of the scores,  c = Σ α h

    where s is the decoder state (`query`), h an encoder state (`key`, default `value`), W₁, W₂ the
    `(dq, units)` and `(dk, units)` kernels and v the `(units,)` vector. With `normalize=True` the
    weight-normalised form g · v/‖v‖ with a bias b inside the tanh (Salimans & Kingma, 2016, as
    tensorflow-addons' `normalize=True`): score = g vᵀ/‖v‖ tanh(W₁ s + W₂ h + b).

    Args:
        units: the size U of the hidden layer of the score.
        normalize: use the weight-normalised score.
        dropout: dropout rate on the attention weights while training, in [0, 1).
        kernel_initializer: initializer of W₁, W₂ and v.
        seed: seed of the dropout and of the sigmoid noise.
        monotonic: monotonic attention (Raffel et al., 2017; tensorflow-addons'
            `BahdanauMonotonicAttention`): the weights are the expected monotonic alignment while
            training and the hard one otherwise, from the choose probabilities sigmoid(score + r)
            (see `keras_seqattn.ops.monotonic_alignment`); one decoder step at a time, with
            `previous_alignment`.
        score_bias_init: the initial value of the learned score bias r (monotonic only; Raffel et
            al. suggest a negative value such as -4).
        sigmoid_noise: the standard deviation of Gaussian noise added to the scores while
            training (monotonic only), which pushes the probabilities towards 0 or 1.
        sampling: "soft" (the context is Σ α v), or "hard" or a `HardAttention`: hard attention
            (Xu et al., 2015), the context is the value at one position drawn from α while
            training (see `HardAttention` for the gradient estimators) and at the argmax otherwise.

    Call arguments:
        query: `(batch, dq)` for one decoder step or `(batch, Tq, dq)`.
        value: `(batch, Tv, dv)`, the encoder outputs, or a feature map `(batch, H, W, dv)` (a
            CNN's output, say) attended over its H·W positions (masks are then `(batch, H, W)`,
            weights `(..., H, W)`).
        key: optional, the shape of `value` but for the last axis; defaults to `value`.
        query_mask: optional `(batch, Tq)` boolean; filled from `query`'s Keras mask. Padded queries
            get zero weights and a zero context; the output carries this mask.
        value_mask: optional `(batch, Tv)` boolean, True = may attend; filled from `value`'s Keras
            mask (e.g. `Embedding(mask_zero=True)`) when not given. A query with no key to attend
            gets a zero context.
        projected_key: optional `self.project_key(key)`: computed once per source sequence, it
            saves projecting the keys again at every decoding step.
        previous_alignment: `(batch, Tv)`, the previous step's weights (monotonic only; one-hot
            on the first source position before the first step).
        return_attention_scores: also return the weights `(batch, [Tq,] Tv)`; with hard
            sampling, then the positions the context read (one-hot, or α itself for a
            `HardAttention(inference="expectation")` at inference), of the same shape.
        training: applies dropout, or draws the hard positions, when True.

    Returns the context `(batch, [Tq,] dv)` and, when asked, the weights (and positions).

    Example:
    >>> attention = BahdanauAttention(units=16)
    >>> attention.build(query_shape=(None, 24), value_shape=(None, None, 32))
    >>> encoder_outputs = keras.random.normal((2, 7, 32))
    >>> keys = attention.project_key(encoder_outputs)  # once per source sentence
    >>> context, weights = attention(
    ...     keras.random.normal((2, 24)), encoder_outputs, projected_key=keys,
    ...     return_attention_scores=True)  # one decoder step
    >>> context.shape, weights.shape
    (TensorShape([2, 32]), TensorShape([2, 7]))

    Reference: Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and
    Translate", ICLR 2015, appendix A.1.2.
    """

    def __init__(
        self,
        units,
        normalize=False,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        seed=None,
        monotonic=False,
        score_bias_init=0.0,
        sigmoid_noise=0.0,
        sampling="soft",
        **kwargs,
    ):
        super().__init__(
            dropout=dropout,
            kernel_initializer=kernel_initializer,
            seed=seed,
            monotonic=monotonic,
            score_bias_init=score_bias_init,
            sigmoid_noise=sigmoid_noise,
            sampling=sampling,
            **kwargs,
        )
        checks.check_positive_int("units", units)
        self.units = units
        self.normalize = bool(normalize)

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self.query_kernel = self.add_weight(
            name="query_kernel", shape=(query_shape[-1], self.units), initializer=self.kernel_initializer
        )
        self.key_kernel = self.add_weight(
            name="key_kernel", shape=(key_shape[-1], self.units), initializer=self.kernel_initializer
        )
        self.attention_v = self.add_weight(name="attention_v", shape=(self.units,), initializer=self.kernel_initializer)
        if self.normalize:
            self.attention_g = self.add_weight(
                name="attention_g", shape=(), initializer=keras.initializers.Constant((1.0 / self.units) ** 0.5)
            )
            self.attention_b = self.add_weight(name="attention_b", shape=(self.units,), initializer="zeros")
        self._build_monotonic()

    def _project_key(self, key):
        """W₂ h for every key: `(batch, Tv, dk)` -> `(batch, Tv, units)`."""
        return ops.matmul(key, self.key_kernel)

    def _score_weights(self):
        if self.normalize:
            return self.attention_g * self.attention_v / ops.norm(self.attention_v), self.attention_b
        return self.attention_v, None

    def _attend(self, query, projected_key, value, value_mask, mask, multiplier):
        attention_v, bias = self._score_weights()
        return additive_attention(
            ops.einsum("btd,du->btu", query, self.query_kernel),
            projected_key,
            value,
            attention_v,
            bias,
            mask=mask,
            dropout_multiplier=multiplier,
        )

    def _scores(self, query, projected_key):
        attention_v, bias = self._score_weights()
        return additive_score(ops.einsum("btd,du->btu", query, self.query_kernel), projected_key, attention_v, bias)

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        projected_key=None,
        previous_alignment=None,
        return_attention_scores=False,
        training=None,
    ):
        return self._run(
            query,
            value,
            key,
            query_mask,
            value_mask,
            projected_key,
            return_attention_scores,
            training,
            previous_alignment=previous_alignment,
        )

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, normalize=self.normalize)
        return config
