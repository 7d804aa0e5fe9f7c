import keras
from keras import ops

from keras_seqattn.ops import checks
from keras_seqattn.ops.attention import scaled_dot_product_attention
from keras_seqattn.ops import masks

_SEQUENCE_AXES = (None, (1,), (-2,))


def clone_initializer(initializer):
    """A fresh copy of `initializer` per sublayer, so that no two kernels start equal."""
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="keras_seqattn")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017), a drop-in for `keras.layers.MultiHeadAttention`.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) = softmax(Q W_i^Q (K W_i^K)ᵀ / √key_dim) V W_i^V

    The constructor and call arguments, the sublayers (`query`, `key`, [`gate`,] `value`,
    `attention_output`, all `EinsumDense`) and so the weights, their order and shapes are those of
    `keras.layers.MultiHeadAttention`: `ours.set_weights(theirs.get_weights())` gives the same
    outputs and scores. Differences: a query with no key left to attend gets a zero output (Keras
    averages all values); only `(batch, T, dim)` inputs are supported (`attention_axes` None or the
    sequence axis); and `num_key_value_heads` gives grouped-query attention: key and value get that
    many heads, and query head i reads key/value head i // (num_heads / num_key_value_heads).

    Args:
        num_heads: number of attention heads h.
        key_dim: size of each query/key head.
        value_dim: size of each value head; defaults to `key_dim`.
        dropout: dropout rate on the attention weights while training, in [0, 1).
        use_bias: whether the projections have biases.
        output_shape: the last dimension(s) of the output; defaults to the query's last dimension.
        attention_axes: None, 1 or -2 (attention over the sequence axis).
        num_key_value_heads: key/value heads for grouped-query attention; default `num_heads`.
        sliding_window: None, or w: query i attends keys j with |i - j| < w (as Keras).
        use_gate: multiply the attention output by sigmoid(query W_gate) before W^O (as Keras).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: of the projections.
        seed: seed of the dropout.
        flash: the attention path: None picks the blocked path (tiles, no T x S matrix)
            for long sequences, True or False forces it or the dense path (see
            `keras_seqattn.ops.scaled_dot_product_attention`).

    Call arguments:
        query: `(batch, T, dim_q)`.
        value: `(batch, S, dim_v)`.
        key: optional `(batch, S, dim_k)`; defaults to `value`.
        query_mask, value_mask, key_mask: padding masks `(batch, T)` / `(batch, S)`, filled from
            the inputs' Keras masks when not given.
        attention_mask: `(batch, T, S)` (size-1 axes broadcast).
        return_attention_scores: also return the weights `(batch, num_heads, T, S)`.
        training: applies dropout when True.
        use_causal_mask: query i attends keys j <= i only (j <= cache_update_index + i with a cache).
        cache: optional key/value cache `(batch, 2, max_length, num_key_value_heads, key_dim)`
            (keys at index 0, values at 1), as keras-hub's `CachedMultiHeadAttention`.
        cache_update_index: where the new keys/values go in `cache` (int or scalar tensor); None
            reads the cache as it is. The cache has a static shape and is updated in place, so
            step-by-step decoding under XLA never retraces.

    Returns the output `(batch, T, output_shape)`, then the scores when asked, then the updated
    cache when one is given.

    All masks are boolean, True = may attend, and combine with AND.

    Example:
    >>> x = keras.random.normal((2, 6, 16))
    >>> out, scores = MultiHeadAttention(num_heads=4, key_dim=8, num_key_value_heads=2)(
    ...     x, x, use_causal_mask=True, return_attention_scores=True)
    >>> out.shape, scores.shape
    (TensorShape([2, 6, 16]), TensorShape([2, 4, 6, 6]))

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.2.2;
    Ainslie et al., "GQA", EMNLP 2023.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        num_key_value_heads=None,
        sliding_window=None,
        use_gate=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        flash=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_positive_int("num_heads", num_heads)
        checks.check_positive_int("key_dim", key_dim)
        checks.check_positive_int("value_dim", value_dim, allow_none=True)
        checks.check_positive_int("num_key_value_heads", num_key_value_heads, allow_none=True)
        checks.check_positive_int("sliding_window", sliding_window, allow_none=True)
        checks.check_rate("dropout", dropout)
        checks.check_flash(flash)
        if num_key_value_heads is not None and num_heads % num_key_value_heads:
            raise ValueError(
                "`num_heads` must be a multiple of `num_key_value_heads`. "
                f"Received: num_heads={num_heads}, num_key_value_heads={num_key_value_heads}")
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        if attention_axes is not None:
            attention_axes = tuple(attention_axes)
        if attention_axes not in _SEQUENCE_AXES:
            raise ValueError(
                "`attention_axes` must be None, 1 or -2 (attention over the sequence axis of "
                f"`(batch, T, dim)` inputs). Received: attention_axes={attention_axes}")
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self._output_shape = tuple(output_shape) if output_shape else None
        self.attention_axes = attention_axes
        self.num_key_value_heads = num_key_value_heads or num_heads
        self.sliding_window = sliding_window
        self.use_gate = bool(use_gate)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        # Applied to every projection's output, as Keras does (not to this layer's output, which
        # an attribute named `activity_regularizer` would do).
        self._projection_activity_regularizer = keras.regularizers.get(activity_regularizer)
        self.seed = seed
        self.flash = flash
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    def _dense(self, name, equation, output_shape, bias_axes, activation=None):
        return keras.layers.EinsumDense(
            equation, output_shape=output_shape, bias_axes=bias_axes if self.use_bias else None,
            activation=activation, name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
            kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
            activity_regularizer=self._projection_activity_regularizer, dtype=self.dtype_policy)

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            checks.check_rank(name, shape, (3,))
        heads, kv_heads = self.num_heads, self.num_key_value_heads
        project = "abc,cde->abde"
        self.query_dense = self._dense("query", project, (None, heads, self.key_dim), "de")
        self.query_dense.build(query_shape)
        self.key_dense = self._dense("key", project, (None, kv_heads, self.key_dim), "de")
        self.key_dense.build(key_shape)
        if self.use_gate:
            self.gate_dense = self._dense("gate", project, (None, heads, self.value_dim), "de", "sigmoid")
            self.gate_dense.build(query_shape)
        self.value_dense = self._dense("value", project, (None, kv_heads, self.value_dim), "de")
        self.value_dense.build(value_shape)
        out_shape = self._output_shape or (query_shape[-1],)
        out_letters = "efghij"[: len(out_shape)]
        self.output_dense = self._dense(
            "attention_output", f"abcd,cd{out_letters}->ab{out_letters}", (None,) + out_shape, out_letters)
        self.output_dense.build((query_shape[0], query_shape[1], heads, self.value_dim))

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False,
             cache=None, cache_update_index=None):
        key = value if key is None else key
        for name, tensor in (("query", query), ("value", value), ("key", key)):
            checks.check_rank(name, tensor, (3,))
        # The masks arrived as arguments (Keras fills them from the inputs).
        query, value, key = (masks.without_implicit_mask(x) for x in (query, value, key))
        checks.check_dims_match("query", query.shape[0], "value", value.shape[0], "batch size")
        checks.check_dims_match("key", key.shape[0], "value", value.shape[0], "batch size")
        checks.check_dims_match("key", key.shape[1], "value", value.shape[1], "sequence length")
        projected_query = self.query_dense(query)
        projected_key, projected_value, cache = self._keys_and_values(key, value, cache, cache_update_index)
        batch, q_len, k_len = query.shape[0], query.shape[1], projected_key.shape[1]
        checks.check_mask_shape("query_mask", query_mask, (batch, q_len))
        checks.check_mask_shape("value_mask", value_mask, (batch, k_len))
        checks.check_mask_shape("key_mask", key_mask, (batch, k_len))
        checks.check_mask_shape("attention_mask", attention_mask, (batch, q_len, k_len))
        offset = 0 if cache_update_index is None else cache_update_index
        causal = window = None
        if use_causal_mask and cache is not None:  # the query starts at `offset` in the cache
            causal = masks.causal_mask(ops.shape(query)[1], ops.shape(projected_key)[1], offset)
        if self.sliding_window is not None:  # |i - j| < w  <=>  |j - i| <= w - 1
            centers = ops.arange(ops.shape(query)[1], dtype="float32") + ops.cast(offset, "float32")
            window = masks.local_window_mask(centers[None, :], ops.shape(projected_key)[1], self.sliding_window - 1)
        mask = masks.attention_mask(query_mask, value_mask, key_mask, attention_mask,
                                    masks.combine_masks(causal, window))
        result = scaled_dot_product_attention(
            projected_query, projected_key, projected_value, mask=mask,
            is_causal=use_causal_mask and cache is None, dropout_rate=self.dropout,
            training=training, seed=self.seed_generator, return_attention_scores=return_attention_scores,
            flash=self.flash)
        output, scores = result if return_attention_scores else (result, None)
        if self.use_gate:
            output = output * self.gate_dense(query)
        output = self.output_dense(output)
        outputs = (output,) + ((scores,) if return_attention_scores else ()) + ((cache,) if cache is not None else ())
        return outputs if len(outputs) > 1 else output

    def compute_cache(self, value, key=None):
        """The filled cache `(batch, 2, S, num_key_value_heads, key_dim)` of `value` (and `key`,
        default `value`): its projected keys and values, computed once (an encoder output in
        cross-attention, say) and then passed as `cache` with `cache_update_index=None`."""
        if not self.built:
            raise ValueError("`compute_cache` needs a built layer: call it (or `build`) first. "
                             f"Received: value.shape={tuple(value.shape)} on an unbuilt layer")
        key = value if key is None else key
        return ops.stack((self.key_dense(key), self.value_dense(value)), axis=1)

    def _keys_and_values(self, key, value, cache, cache_update_index):
        """Projected keys and values, `(batch, S, kv_heads, dim)`, and the updated cache.

        The cache `(batch, 2, max_length, kv_heads, key_dim)` holds keys and values. With
        `cache_update_index=None` it is read as it is (keys computed once, e.g. over an encoder
        output); otherwise the new keys and values are written at `cache_update_index`.
        """
        if cache is None:
            if cache_update_index is not None:
                raise ValueError(
                    "`cache_update_index` needs a `cache`. Received: cache=None, "
                    f"cache_update_index={cache_update_index}")
            return self.key_dense(key), self.value_dense(value), None
        expected = (key.shape[0], 2, None, self.num_key_value_heads, self.key_dim)
        checks.check_rank("cache", cache, (5,))
        checks.check_mask_shape("cache", cache, expected)
        if self.value_dim != self.key_dim:
            raise ValueError(
                "A cache holds keys and values together: `value_dim` must equal `key_dim`. "
                f"Received: key_dim={self.key_dim}, value_dim={self.value_dim}")
        if cache_update_index is None:
            return cache[:, 0], cache[:, 1], cache
        start = (0, cache_update_index, 0, 0)
        keys = ops.slice_update(cache[:, 0], start, ops.cast(self.key_dense(key), cache.dtype))
        values = ops.slice_update(cache[:, 1], start, ops.cast(self.value_dense(value), cache.dtype))
        return keys, values, ops.stack((keys, values), axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            value_dim=self.value_dim,
            dropout=self.dropout,
            use_bias=self.use_bias,
            output_shape=self._output_shape,
            attention_axes=self.attention_axes,
            num_key_value_heads=self.num_key_value_heads,
            sliding_window=self.sliding_window,
            use_gate=self.use_gate,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
            activity_regularizer=keras.regularizers.serialize(self._projection_activity_regularizer),
            kernel_constraint=keras.constraints.serialize(self.kernel_constraint),
            bias_constraint=keras.constraints.serialize(self.bias_constraint),
            seed=self.seed,
            flash=self.flash,
        )
        return config
