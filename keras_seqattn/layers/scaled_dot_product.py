import keras
from keras import ops

from keras_seqattn import checks, deprecation
from keras_seqattn.layers.hard_attention import get_hard_attention, serialize_hard_attention
from keras_seqattn.ops.attention import scaled_dot_product_attention
from keras_seqattn.ops.masks import attention_mask, combine_masks, lift_mask


@keras.saving.register_keras_serializable(package="keras_seqattn")
class ScaledDotProduct(keras.layers.Layer):
    """Scaled dot-product attention (Vaswani et al., 2017, eq. 1), without weights.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

    Args:
        dropout: dropout rate on the attention weights while training, in [0, 1).
        scale: multiplies the scores instead of 1/√d_k.
        seed: seed of the dropout.
        flash_attention: the attention path: None lets the attention policy pick the flash path
            (no T x S matrix) for long sequences, True or False forces it or the dense path (see
            `keras_seqattn.ops.scaled_dot_product_attention`; `flash=` is its deprecated spelling).
        sampling: "soft" (the context is Σ α v), or "hard" or a `HardAttention`: hard attention
            (Xu et al., 2015), each query (and head) reads the value at one key position drawn
            from its weights while training, at the argmax otherwise (see `HardAttention`). Hard
            attention computes the weights, so it takes the dense path.

    Call arguments:
        query: `(batch, T, d_k)`, or `(batch, T, heads, d_k)` for several heads at once.
        key: `(batch, S, d_k)` (or `(batch, S, kv_heads, d_k)`, heads a multiple of kv_heads).
        value: `(batch, S, d_v)` (or `(batch, S, kv_heads, d_v)`).
        query_mask, key_mask, value_mask: optional padding masks `(batch, T)` / `(batch, S)`,
            filled from the inputs' Keras masks when not given.
        mask: optional attention mask `(batch, S)`, `(batch, T, S)` or, for 4-D inputs,
            `(batch, heads, T, S)`.
        use_causal_mask: query i attends keys j <= i only.
        return_attention_scores: also return the weights `(batch, [heads,] T, S)` and, with hard
            sampling, the positions read (one-hot, of the same shape).
        training: applies dropout when True.

    Masks are boolean, True = may attend, and all that are given combine with AND; a query left
    with no key to attend gets a zero output. The output carries the query's mask.

    Example:
    >>> q = keras.random.normal((2, 5, 8)); kv = keras.random.normal((2, 9, 8))
    >>> ScaledDotProduct()(q, kv, kv, use_causal_mask=True).shape
    TensorShape([2, 5, 8])

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.2.1.
    """

    flash = deprecation.renamed_attribute("flash", "flash_attention")

    def __init__(self, dropout=0.0, scale=None, seed=None, flash_attention=None, sampling="soft", **kwargs):
        flash_attention = deprecation.take_renamed(
            kwargs, "flash", "flash_attention", flash_attention, "ScaledDotProduct"
        )
        super().__init__(**kwargs)
        checks.check_rate("dropout", dropout)
        checks.check_flash_attention(flash_attention)
        self.sampler = get_hard_attention(sampling, seed)
        if self.sampler is not None and (dropout > 0 or flash_attention):
            raise ValueError(
                "Hard attention (`sampling`) takes neither `dropout` nor `flash_attention=True`: it "
                f"draws one position from the weights. Received: sampling={sampling!r}, "
                f"dropout={dropout}, flash_attention={flash_attention}"
            )
        if scale is not None and not isinstance(scale, (int, float)):
            raise ValueError(f"`scale` must be a number or None. Received: scale={scale!r}")
        self.dropout = dropout
        self.scale = scale
        self.seed = seed
        self.flash_attention = flash_attention
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    def call(
        self,
        query,
        key,
        value,
        query_mask=None,
        key_mask=None,
        value_mask=None,
        mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        checks.check_rank("query", query, (3, 4))
        batch, q_len, k_len = query.shape[0], query.shape[1], key.shape[1]
        checks.check_mask_shape("query_mask", query_mask, (batch, q_len))
        checks.check_mask_shape("key_mask", key_mask, (batch, k_len))
        checks.check_mask_shape("value_mask", value_mask, (batch, k_len))
        heads = query.shape[2] if len(query.shape) == 4 else 1
        if mask is not None:
            checks.check_attention_mask("mask", mask, (batch, heads, q_len, k_len), len(query.shape) == 3)
        padding = attention_mask(query_mask=query_mask, value_mask=value_mask, key_mask=key_mask)
        if mask is not None and padding is not None:
            mask = ops.cast(mask, "bool")
            rank = max(len(mask.shape), 3)
            mask, padding = lift_mask(mask, rank), lift_mask(padding, rank)
        result = scaled_dot_product_attention(
            query,
            key,
            value,
            mask=combine_masks(mask, padding),
            is_causal=use_causal_mask,
            scale=self.scale,
            dropout_rate=self.dropout,
            training=training,
            seed=self.seed_generator,
            return_attention_scores=return_attention_scores or self.sampler is not None,
            flash_attention=self.flash_attention,
        )
        if self.sampler is None:
            return result
        weights = result[1]
        positions = ops.cast(self.sampler(weights, training=training), value.dtype)
        if len(query.shape) == 3:
            context = ops.einsum("bts,bsd->btd", positions, value)
        else:  # query head h reads key/value head h // (heads / kv_heads)
            groups = query.shape[2] // value.shape[2]
            context = ops.einsum("bhts,bshd->bthd", positions, ops.repeat(value, groups, axis=2))
        return (context, weights, ops.cast(positions, weights.dtype)) if return_attention_scores else context

    def get_config(self):
        config = super().get_config()
        config.update(
            dropout=self.dropout,
            scale=self.scale,
            seed=self.seed,
            flash_attention=self.flash_attention,
            sampling=serialize_hard_attention(self.sampler),
        )
        return config
