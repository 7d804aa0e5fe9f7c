import keras
from keras import ops

from keras_seqattn import checks, deprecation
from keras_seqattn.layers.key_value_cache import KeyValueCache
from keras_seqattn.ops import masks
from keras_seqattn.ops.attention import scaled_dot_product_attention
from keras_seqattn.ops.axes import SequenceView, normalize_attention_axes
from keras_seqattn.ops.positions import alibi_slopes

_LETTERS = "abcdefgh"  # the batch and d axes of a projection's einsum equation
_MAX_RANK = len(_LETTERS) + 1  # of the inputs: a letter for each axis but the last


def clone_initializer(initializer):
    """A fresh copy of `initializer` per sublayer, so that no two kernels start equal."""
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package="keras_seqattn")
class MultiHeadAttention(KeyValueCache, keras.layers.Layer):
    """Multi-head attention (Vaswani et al., 2017), a drop-in for `keras.layers.MultiHeadAttention`.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V) = softmax(Q W_i^Q (K W_i^K)ᵀ / √key_dim) V W_i^V

    The constructor and call arguments, the sublayers (`query`, `key`, [`gate`,] `value`,
    `attention_output`, all `EinsumDense`) and so the weights, their order and shapes are those of
    `keras.layers.MultiHeadAttention`: `ours.set_weights(theirs.get_weights())` gives the same
    outputs and scores, for `(batch, T, dim)` inputs and for inputs of higher rank
    `(batch, d_1, ..., d_n, dim)` with any `attention_axes`. Differences: a query with no key left
    to attend gets a zero output (Keras averages all values); `num_key_value_heads` gives
    grouped-query attention (query head i reads key/value head i // (num_heads /
    num_key_value_heads)); and the key/value cache.

    Args:
        num_heads: number of attention heads h.
        key_dim: size of each query/key head.
        value_dim: size of each value head; defaults to `key_dim`.
        dropout: dropout rate on the attention weights while training, in [0, 1).
        use_bias: whether the projections have biases.
        output_shape: the last dimension(s) of the output (an int or a tuple of ints); defaults
            to the query's last dimension.
        attention_axes: the axes attended over, for inputs `(batch, d_1, ..., d_n, dim)`: None
            (every d axis), an int or a tuple of ints (negative ones count from the end, -2 is
            d_n). The attention axes are attended jointly (their positions flattened in the order
            given); the other d axes act as batch axes.
        num_key_value_heads: key/value heads for grouped-query attention; default `num_heads`.
        sliding_window: None, or w: query i attends keys j with |i - j| < w (as Keras).
        use_gate: multiply the attention output by sigmoid(query W_gate) before W^O (as Keras).
        kernel_initializer: of the projections (as Keras; so are the next six).
        bias_initializer: of the projections.
        kernel_regularizer: of the projections.
        bias_regularizer: of the projections.
        activity_regularizer: of the layer's output.
        kernel_constraint: of the projections.
        bias_constraint: of the projections.
        seed: seed of the dropout.
        flash_attention: the attention path (keras's argument): None lets the attention policy
            pick the flash path (no T x S matrix) for long sequences, True or False forces it
            or the dense path (see `keras_seqattn.ops.scaled_dot_product_attention`). The old
            spelling `flash=` still works, with a DeprecationWarning.

    Call arguments:
        query: `(batch, T, dim_q)`, or `(batch, d_1, ..., d_n, dim_q)`.
        value: `(batch, S, dim_v)`, or `(batch, e_1, ..., e_n, dim_v)` (the non-attention axes as
            the query's).
        key: optional, the shape of `value` but for the last axis; defaults to `value`.
        query_mask, value_mask, key_mask: padding masks `(batch, T)` / `(batch, S)` (or the
            inputs' shapes without their last axis), filled from the inputs' Keras masks when not
            given.
        attention_mask: `(batch, T, S)`, `(T, S)` or `(batch, num_heads, T, S)` (size-1 axes
            broadcast); for higher-rank inputs, keras's layout `(batch, o..., [num_heads,]
            t_a..., s_a...)` (o: the other axes, t_a / s_a: the query's / key's attention axes).
        return_attention_scores: also return the weights `(batch, num_heads, T, S)` (for higher
            ranks `(batch, o..., num_heads, t_a..., s_a...)`, as Keras).
        training: applies dropout when True.
        use_causal_mask: query i attends keys j <= i only (j <= cache_update_index + i with a cache;
            over the flattened positions of several attention axes).
        cache: optional key/value cache `(batch, 2, max_length, num_key_value_heads, key_dim)`
            (keys at index 0, values at 1), as keras-hub's `CachedMultiHeadAttention`;
            `(batch, T, dim)` inputs only.
        cache_update_index: where the new keys/values go in `cache` (int or scalar tensor); None
            reads the cache as it is. The cache has a static shape and is updated in place, so
            step-by-step decoding under XLA never retraces.

    Returns the output `(batch, T, output_shape)`, then the scores when asked, then the updated
    cache when one is given.

    All masks are boolean, True = may attend, and combine with AND.

    A subclass may override `_compute_attention(query, key, value, attention_mask=None,
    training=None, return_attention_scores=False)`, keras's hook: it gets the projected
    `(batch', T, num_heads, key_dim)` queries and `(batch', S, num_key_value_heads, ·)` keys and
    values (the attention axes flattened, the other axes in batch'), and the merged mask
    (causality included), and returns `(output (batch', T, num_heads, value_dim), scores or None)`.

    Example:
    >>> x = keras.random.normal((2, 6, 16))
    >>> out, scores = MultiHeadAttention(num_heads=4, key_dim=8, num_key_value_heads=2)(
    ...     x, x, use_causal_mask=True, return_attention_scores=True)
    >>> out.shape, scores.shape
    (TensorShape([2, 6, 16]), TensorShape([2, 4, 6, 6]))

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.2.2;
    Ainslie et al., "GQA", EMNLP 2023.
    """

    flash = deprecation.renamed_attribute("flash", "flash_attention")

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
        flash_attention=None,
        rope_max_wavelength=None,
        rope_scaling_factor=1.0,
        alibi_bias_max=None,
        **kwargs,
    ):
        flash_attention = deprecation.take_renamed(
            kwargs, "flash", "flash_attention", flash_attention, "MultiHeadAttention"
        )
        super().__init__(**kwargs)
        checks.check_positive_int("num_heads", num_heads)
        if rope_max_wavelength is not None:
            checks.check_number("rope_max_wavelength", rope_max_wavelength, 0, strict=True)
        checks.check_number("rope_scaling_factor", rope_scaling_factor, 0, strict=True)
        if alibi_bias_max is not None:
            checks.check_number("alibi_bias_max", alibi_bias_max, 0, strict=True)
        if rope_max_wavelength is not None and key_dim % 2:
            raise ValueError(f"Rotary embeddings need an even `key_dim`. Received: key_dim={key_dim}")
        checks.check_positive_int("key_dim", key_dim)
        checks.check_positive_int("value_dim", value_dim, allow_none=True)
        checks.check_positive_int("num_key_value_heads", num_key_value_heads, allow_none=True)
        checks.check_positive_int("sliding_window", sliding_window, allow_none=True)
        checks.check_rate("dropout", dropout)
        checks.check_flash_attention(flash_attention)
        if num_key_value_heads is not None and num_heads % num_key_value_heads:
            raise ValueError(
                "`num_heads` must be a multiple of `num_key_value_heads`. "
                f"Received: num_heads={num_heads}, num_key_value_heads={num_key_value_heads}"
            )
        self._output_shape = checks.check_output_shape(output_shape)
        attention_axes = checks.check_attention_axes(attention_axes)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = use_bias
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
        self.flash_attention = flash_attention
        self.rope_max_wavelength = rope_max_wavelength
        self.rope_scaling_factor = rope_scaling_factor
        self.alibi_bias_max = alibi_bias_max
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    def _dense(self, name, equation, output_shape, bias_axes, activation=None):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            activation=activation,
            name=name,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint,
            activity_regularizer=self._projection_activity_regularizer,
            dtype=self.dtype_policy,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        checks.check_attention_shapes(query_shape, value_shape, key_shape, max_rank=_MAX_RANK)
        rank = len(query_shape)
        self._view = SequenceView(normalize_attention_axes(self.attention_axes, rank), rank)
        free = _LETTERS[: rank - 1]
        project = f"{free}x,xyz->{free}yz"
        heads, kv_heads, middle = self.num_heads, self.num_key_value_heads, (None,) * (rank - 2)
        self.query_dense = self._dense("query", project, (*middle, heads, self.key_dim), "yz")
        self.query_dense.build(query_shape)
        self.key_dense = self._dense("key", project, (*middle, kv_heads, self.key_dim), "yz")
        self.key_dense.build(key_shape)
        if self.use_gate:
            self.gate_dense = self._dense("gate", project, (*middle, heads, self.value_dim), "yz", "sigmoid")
            self.gate_dense.build(query_shape)
        self.value_dense = self._dense("value", project, (*middle, kv_heads, self.value_dim), "yz")
        self.value_dense.build(value_shape)
        out_shape = self._output_shape or (query_shape[-1],)
        out_letters = "stuvw"[: len(out_shape)]
        self.output_dense = self._dense(
            "attention_output", f"{free}yz,yz{out_letters}->{free}{out_letters}", (*middle, *out_shape), out_letters
        )
        self.output_dense.build((*query_shape[:-1], heads, self.value_dim))

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
    ):
        key = value if key is None else key
        checks.check_attention_shapes(query.shape, value.shape, key.shape, max_rank=_MAX_RANK)
        view = self._view
        if cache is not None and not view.identity:
            raise ValueError(
                "A `cache` needs `(batch, T, dim)` inputs attending over axis 1. Received: "
                f"query.shape={tuple(query.shape)}, attention_axes={self.attention_axes}"
            )
        # The masks arrived as arguments (Keras fills them from the inputs).
        query, value, key = (masks.without_implicit_mask(x) for x in (query, value, key))
        checks.check_dims_match("query", query.shape[0], "value", value.shape[0], "batch size")
        projected_query = self.query_dense(query)
        projected_key, projected_value, cache = self._keys_and_values(key, value, cache, cache_update_index)
        key_shape = tuple(projected_key.shape[:-2])
        checks.check_mask_shape("query_mask", query_mask, tuple(query.shape[:-1]))
        checks.check_mask_shape("value_mask", value_mask, key_shape)
        checks.check_mask_shape("key_mask", key_mask, key_shape)
        query_seq, key_seq, value_seq = (view.flatten(x) for x in (projected_query, projected_key, projected_value))
        q_len, k_len = ops.shape(query_seq)[1], ops.shape(key_seq)[1]
        offset = 0 if cache_update_index is None else cache_update_index
        if self.rope_max_wavelength is not None:  # keys were rotated as they were projected
            query_seq = self._rotate(query_seq, offset)
        padding = masks.attention_mask(
            *(None if m is None else view.flatten(m) for m in (query_mask, value_mask, key_mask))
        )
        mask = masks.combine_masks(
            self._attention_mask_4d(attention_mask, query, projected_key),
            None if padding is None else masks.lift_mask(padding, 4),
        )
        if type(self)._compute_attention is MultiHeadAttention._compute_attention:
            # Causality, the window and ALiBi go to the kernels, which skip the tiles they mask.
            output, scores = self._attend(
                query_seq,
                key_seq,
                value_seq,
                mask,
                training,
                return_attention_scores,
                use_causal_mask,
                None if cache_update_index is None else offset,
            )
        else:  # a subclass's hook gets keras's arguments: one mask with causality and the window merged
            if use_causal_mask:
                mask = masks.combine_masks(mask, masks.causal_mask(q_len, k_len, offset)[None, None])
            if self.sliding_window is not None:  # |i - j| < w  <=>  |j - i| <= w - 1
                centers = ops.arange(q_len, dtype="float32") + ops.cast(offset, "float32")
                mask = masks.combine_masks(mask, masks.local_window_mask(centers, k_len, self.sliding_window - 1))
            output, scores = self._compute_attention(
                query_seq, key_seq, value_seq, mask, training, return_attention_scores
            )
        output = view.unflatten(output, projected_query)
        if self.use_gate:
            output = output * self.gate_dense(query)
        output = self.output_dense(output)
        if return_attention_scores:
            scores = view.scores(scores, query, projected_key)
        outputs = (output,) + ((scores,) if return_attention_scores else ()) + ((cache,) if cache is not None else ())
        return outputs if len(outputs) > 1 else output

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        use_causal_mask=False,
    ):
        """Attention over projected `query (batch, T, num_heads, key_dim)`, `key` and `value`
        `(batch, S, num_key_value_heads, ·)` with a boolean `attention_mask` of rank 2 to 4
        broadcastable to `(batch, num_heads, T, S)` (missing axes are inserted before T, as Keras
        does), causal with `use_causal_mask`. Returns `(output (batch, T, num_heads, value_dim),
        scores (batch, num_heads, T, S) or None)`. Keras's override point, kept with its signature."""
        mask = None if attention_mask is None else masks.insert_heads_axis(attention_mask)
        result = scaled_dot_product_attention(
            query,
            key,
            value,
            mask=mask,
            is_causal=use_causal_mask,
            dropout_rate=self.dropout,
            training=training,
            seed=self.seed_generator,
            return_attention_scores=return_attention_scores,
            flash_attention=self.flash_attention,
        )
        return result if return_attention_scores else (result, None)

    def _attend(self, query, key, value, mask, training, return_attention_scores, is_causal, offset):
        """Attention over the projected sequences with the layer's window and ALiBi, causal with
        `is_causal`, the queries at `offset` among the keys (None: 0)."""
        slopes = None if self.alibi_bias_max is None else alibi_slopes(self.num_heads, self.alibi_bias_max)
        result = scaled_dot_product_attention(
            query,
            key,
            value,
            mask=mask,
            is_causal=is_causal,
            dropout_rate=self.dropout,
            training=training,
            seed=self.seed_generator,
            return_attention_scores=return_attention_scores,
            flash_attention=self.flash_attention,
            window=self.sliding_window,
            alibi_slopes=slopes,
            query_offset=offset,
        )
        return result if return_attention_scores else (result, None)

    def _attention_mask_4d(self, attention_mask, query, projected_key):
        """The `attention_mask` argument as `(batch·O|1, num_heads|1, T|1, S|1)`, checked."""
        if attention_mask is None:
            return None
        if not self._view.identity:
            return self._view.attention_mask(ops.cast(attention_mask, "bool"), query, projected_key)
        batch, q_len, k_len = query.shape[0], query.shape[1], projected_key.shape[1]
        checks.check_rank("attention_mask", attention_mask, (2, 3, 4))
        expected = {2: (q_len, k_len), 3: (batch, q_len, k_len), 4: (batch, self.num_heads, q_len, k_len)}
        checks.check_mask_shape("attention_mask", attention_mask, expected[len(attention_mask.shape)])
        return masks.insert_heads_axis(attention_mask)

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        checks.check_attention_shapes(query_shape, value_shape, key_shape, max_rank=_MAX_RANK)
        query_shape = tuple(query_shape)
        return query_shape[:-1] + self._output_shape if self._output_shape else query_shape

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, cache=None, **kwargs):
        key = value if key is None else key
        outputs = [
            keras.KerasTensor(self.compute_output_shape(query.shape, value.shape, key.shape), dtype=self.compute_dtype)
        ]
        if return_attention_scores:
            rank = len(query.shape)
            axes = normalize_attention_axes(self.attention_axes, rank)
            others = [query.shape[a] for a in range(1, rank - 1) if a not in axes]
            key_sizes = [cache.shape[2]] if cache is not None else [key.shape[a] for a in axes]
            shape = (query.shape[0], *others, self.num_heads, *[query.shape[a] for a in axes], *key_sizes)
            outputs.append(keras.KerasTensor(shape, dtype=self.compute_dtype))
        if cache is not None:
            outputs.append(keras.KerasTensor(cache.shape, dtype=cache.dtype))
        return tuple(outputs) if len(outputs) > 1 else outputs[0]

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
            flash_attention=self.flash_attention,
            rope_max_wavelength=self.rope_max_wavelength,
            rope_scaling_factor=self.rope_scaling_factor,
            alibi_bias_max=self.alibi_bias_max,
        )
        return config
