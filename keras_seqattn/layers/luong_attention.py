import warnings

import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.layers.score_attention import ScoreAttention
from keras_seqattn.ops.rnn_attention import additive_attention, dot_attention
from keras_seqattn.ops.scores import additive_score, dot_score

SCORE_MODES = ("dot", "general", "concat")
LOCAL_MODES = ("aligned", "predictive")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class LuongAttention(ScoreAttention):
    """Multiplicative ("global" and "local") attention of Luong et al. (2015).

    score(h_t, h̄_s) = h_tᵀ h̄_s                    (`score_mode="dot"`)
                    = h_tᵀ W_a h̄_s                  (`"general"`, W_a: `(dk, dq)`)
                    = v_aᵀ tanh(W_a [h_t; h̄_s])     (`"concat"`, W_a split as `(dq, units)`, `(dk, units)`)
    a_t = softmax_s(score),  c_t = Σ_s a_t(s) h̄_s,

    with h_t the decoder state (`query`) and h̄_s the encoder states (`key`, default `value`).
    `scale=True` multiplies the score by a learned scalar g (tensorflow-addons' `scale`).

    Local attention (`window=D`) attends only to the source positions s in [p_t - D, p_t + D]:
    `local_mode="aligned"` (Luong's local-m, "monotonic alignment") sets p_t = t, the query's
    position; `"predictive"` (local-p)
    sets p_t = S · sigmoid(v_pᵀ tanh(W_p h_t)), S the source length (unpadded, from the mask), and
    multiplies the weights by exp(-(s - p_t)² / (2σ²)) with σ = D/2, so they no longer sum to 1.

    Args:
        score_mode: "dot", "general" or "concat".
        units: the hidden size of the concat score and of local-p's W_p; defaults to the query
            depth. With "general" the query depth must equal `units` when it is given.
        scale: learn a scalar g that multiplies the score.
        window: None (global attention) or the half-width D of the local window.
        local_mode: "aligned" or "predictive" (used with `window`). "monotonic", its old name,
            still works with a DeprecationWarning: it is not Raffel et al.'s `monotonic=True`.
        dropout: dropout rate on the attention weights while training, in [0, 1).
        kernel_initializer: initializer of the kernels and vectors.
        seed: seed of the dropout and of the sigmoid noise.
        monotonic: monotonic attention (Raffel et al., 2017; tensorflow-addons'
            `LuongMonotonicAttention`), as in `BahdanauAttention`; not with `window`.
        score_bias_init: with `monotonic`, as in `BahdanauAttention`.
        sigmoid_noise: with `monotonic`, as in `BahdanauAttention`.
        sampling: "soft", "hard" or a `HardAttention` (hard attention), as in `BahdanauAttention`.

    Call arguments: as `BahdanauAttention` (query `(batch, dq)` or `(batch, Tq, dq)`, value
    `(batch, Tv, dv)` or a feature map `(batch, H, W, dv)`, key, query_mask, value_mask,
    projected_key, previous_alignment,
    return_attention_scores, training), plus `query_offset`: the target position of the first
    query (an int or a scalar tensor; the decoding step when the query is a single step), used by
    `local_mode="aligned"`.

    Returns the context `(batch, [Tq,] dv)` and, when asked, the weights `(batch, [Tq,] Tv)`.

    Example:
    >>> attention = LuongAttention("general", window=3, local_mode="predictive")
    >>> decoder_states = keras.random.normal((2, 5, 16))
    >>> encoder_states = keras.random.normal((2, 9, 16))
    >>> attention(decoder_states, encoder_states).shape
    TensorShape([2, 5, 16])

    Reference: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine
    Translation", EMNLP 2015, sections 3.1-3.2.
    """

    def __init__(
        self,
        score_mode="general",
        units=None,
        scale=False,
        window=None,
        local_mode="predictive",
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
        checks.check_choice("score_mode", score_mode, SCORE_MODES)
        checks.check_positive_int("units", units, allow_none=True)
        checks.check_positive_int("window", window, allow_none=True)
        if local_mode == "monotonic":
            warnings.warn(
                "`local_mode='monotonic'` is now `local_mode='aligned'` (Luong's local-m), so that it "
                "cannot be taken for Raffel et al.'s monotonic attention (`monotonic=True`).",
                DeprecationWarning,
                stacklevel=2,
            )
            local_mode = "aligned"
        checks.check_choice("local_mode", local_mode, LOCAL_MODES)
        if monotonic and window is not None:
            raise ValueError(
                "Monotonic attention has no local window: pass `window=None` with "
                f"`monotonic=True`. Received: window={window!r}"
            )
        self.score_mode = score_mode
        self.units = units
        self.scale = bool(scale)
        self.window = window
        self.local_mode = local_mode

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        query_depth, key_depth = query_shape[-1], key_shape[-1]
        units = self.units or query_depth
        weight = lambda name, shape: self.add_weight(name=name, shape=shape, initializer=self.kernel_initializer)
        if self.score_mode == "general":
            if self.units is not None and self.units != query_depth:
                raise ValueError(
                    "With score_mode='general' the query depth must equal `units`. "
                    f"Received: units={self.units}, query depth={query_depth}"
                )
            self.key_kernel = weight("key_kernel", (key_depth, query_depth))
        elif self.score_mode == "concat":
            self.query_kernel = weight("query_kernel", (query_depth, units))
            self.key_kernel = weight("key_kernel", (key_depth, units))
            self.attention_v = weight("attention_v", (units,))
        if self.scale:
            self.attention_g = self.add_weight(name="attention_g", shape=(), initializer="ones")
        if self.window is not None and self.local_mode == "predictive":
            self.position_kernel = weight("position_kernel", (query_depth, units))
            self.position_v = weight("position_v", (units,))
        self._build_monotonic()

    def _project_key(self, key):
        """The key-only part of the score: h̄ (dot), h̄ W_aᵀ (general) or W_h h̄ (concat)."""
        return key if self.score_mode == "dot" else ops.matmul(key, self.key_kernel)

    def _window_centers(self, query, value, value_mask, query_offset):
        """p_t for every query, `(batch, Tq)`."""
        if self.local_mode == "aligned":
            steps = ops.arange(ops.shape(query)[1], dtype="float32") + ops.cast(query_offset, "float32")
            return ops.broadcast_to(steps[None, :], ops.shape(query)[:2])
        if value_mask is None:
            source_length = ops.cast(ops.shape(value)[1], "float32")
        else:  # the unpadded source length
            source_length = ops.sum(ops.cast(value_mask, "float32"), axis=-1, keepdims=True)
        hidden = ops.tanh(ops.einsum("btd,du->btu", query, self.position_kernel))
        fraction = ops.sigmoid(ops.cast(ops.einsum("btu,u->bt", hidden, self.position_v), "float32"))
        return source_length * fraction

    def _score_terms(self, query):
        """The query side of the score: `(projected query, v)` for concat (g folded into v:
        g · v_aᵀ tanh(·) = (g v_a)ᵀ tanh(·)), else `(query, g or None)`."""
        scale = self.attention_g if self.scale else None
        if self.score_mode == "concat":
            attention_v = self.attention_v if scale is None else scale * self.attention_v
            return ops.einsum("btd,du->btu", query, self.query_kernel), attention_v
        return query, scale

    def _attend(self, query, projected_key, value, value_mask, mask, multiplier, query_offset=0):
        local = {}
        if self.window is not None:
            local = dict(
                window_centers=self._window_centers(query, value, value_mask, query_offset),
                window=self.window,
                gaussian=self.local_mode == "predictive",
            )
        query_term, weight = self._score_terms(query)
        if self.score_mode == "concat":
            return additive_attention(
                query_term, projected_key, value, weight, mask=mask, dropout_multiplier=multiplier, **local
            )
        return dot_attention(
            query_term, projected_key, value, scale=weight, mask=mask, dropout_multiplier=multiplier, **local
        )

    def _scores(self, query, projected_key):
        query_term, weight = self._score_terms(query)
        if self.score_mode == "concat":
            return additive_score(query_term, projected_key, weight)
        return dot_score(query_term, projected_key, weight)

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        projected_key=None,
        query_offset=0,
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
            query_offset=query_offset,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            score_mode=self.score_mode,
            units=self.units,
            scale=self.scale,
            window=self.window,
            local_mode=self.local_mode,
        )
        return config
