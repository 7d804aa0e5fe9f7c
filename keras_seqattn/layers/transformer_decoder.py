import keras

from keras_seqattn import checks
from keras_seqattn.layers import transformer_block as parts


@keras.saving.register_keras_serializable(package="keras_seqattn")
class TransformerDecoder(parts.TransformerBlock):
    """One Transformer decoder block (Vaswani et al., 2017), a drop-in for
    `keras_hub.layers.TransformerDecoder`.

    post-norm (default):  x = LN(x + MHA(x, x, causal));  x = LN(x + MHA(x, enc));  y = LN(x + FFN(x))
    pre-norm (normalize_first=True): LN moves in front of each sublayer, inside the residual.
    Without an `encoder_sequence` (at the first call) the block is decoder-only: no cross-attention.

    Same constructor and call arguments, cache convention, return values, sublayers and weights (in
    the same order) as keras-hub's: `ours.set_weights(hub_layer.get_weights())` gives the same outputs
    at the unpadded positions. Beyond keras-hub: `return_attention_scores=True` also returns the
    self-attention weights `(batch, num_heads, T, S_self)` and, with an encoder, the cross-attention
    weights `(batch, num_heads, T, S_enc)`, from the cached path too; padded positions attend nothing.

    Args: as `TransformerEncoder` (intermediate_dim, num_heads, dropout, activation,
    layer_norm_epsilon, kernel_initializer, bias_initializer, normalize_first, flash_attention,
    rope_max_wavelength, alibi_bias_max, sliding_window: for the self-attention).

    Call arguments:
        decoder_sequence: `(batch, T, d)`.
        encoder_sequence: `(batch, S, d_enc)` or None (decoder-only); fixed at the first call.
        decoder_padding_mask: `(batch, T)`, True = a real token; defaults to the Keras mask.
        decoder_attention_mask: `(batch, T, T)` (`(batch, T, max_length)` with a cache).
        encoder_padding_mask: `(batch, S)`; defaults to the encoder sequence's Keras mask.
        encoder_attention_mask: `(batch, T, S)`.
        self_attention_cache: `(batch, 2, max_length, num_heads, d / num_heads)` keys and values.
        self_attention_cache_update_index: where this call's keys/values go (int or scalar tensor).
        cross_attention_cache: `(batch, 2, S, num_heads, d / num_heads)`.
        cross_attention_cache_update_index: 0 to fill it from `encoder_sequence`, None to reuse it.
        use_causal_mask: mask future positions (default True); offset by the cache index.
        training: applies dropout when True.
        return_attention_scores: also return the attention weights (last in the returned tuple).

    Returns `outputs`; with caches `(outputs, self_attention_cache[, cross_attention_cache])`; with
    `return_attention_scores=True` the self- and (with an encoder) cross-attention weights follow.

    Example:
    >>> decoder = TransformerDecoder(intermediate_dim=32, num_heads=4)
    >>> target, source = keras.random.normal((2, 5, 16)), keras.random.normal((2, 9, 16))
    >>> outputs, self_scores, cross_scores = decoder(target, source, return_attention_scores=True)
    >>> outputs.shape, self_scores.shape, cross_scores.shape
    (TensorShape([2, 5, 16]), TensorShape([2, 4, 5, 5]), TensorShape([2, 4, 5, 9]))

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.1.
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        checks.check_shape_rank("decoder_sequence", decoder_sequence_shape, (3,))
        hidden_dim = decoder_sequence_shape[-1]
        head = self.head_size(hidden_dim)
        self.self_attention = self.attention_layer("self_attention", head)
        self.self_attention.build(decoder_sequence_shape, decoder_sequence_shape)
        self.self_attention_layer_norm, self.self_attention_dropout = self.build_norm_and_dropout(
            "self_attention", decoder_sequence_shape
        )
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            checks.check_shape_rank("encoder_sequence", encoder_sequence_shape, (3,))
            self.cross_attention = self.attention_layer("cross_attention", head, self_attention=False)
            self.cross_attention.build(decoder_sequence_shape, encoder_sequence_shape)
            self.cross_attention_layer_norm, self.cross_attention_dropout = self.build_norm_and_dropout(
                "cross_attention", decoder_sequence_shape
            )
        self.build_feedforward(hidden_dim, decoder_sequence_shape)
        self.feedforward_layer_norm, self.feedforward_dropout = self.build_norm_and_dropout(
            "feedforward", decoder_sequence_shape
        )

    def compute_cross_attention_cache(self, encoder_sequence):
        """The cross-attention cache `(batch, 2, S, num_heads, head_dim)` of `encoder_sequence`,
        computed once per source and passed at every step as `cross_attention_cache` (with
        `cross_attention_cache_update_index=None`). Beyond keras-hub."""
        if not self.built or self.cross_attention is None:
            raise ValueError(
                "`compute_cross_attention_cache` needs a layer built with cross-attention (called "
                f"with an `encoder_sequence`). Received: encoder_sequence.shape="
                f"{tuple(encoder_sequence.shape)}, built={self.built}"
            )
        return self.cross_attention.compute_cache(encoder_sequence)

    def _check_call(self, encoder_sequence, self_attention_cache, cross_attention_cache):
        has_cross = self.cross_attention is not None
        if has_cross != (encoder_sequence is not None):
            raise ValueError(
                "`encoder_sequence` must be given at every call or at none: this layer was built "
                f"{'with' if has_cross else 'without'} cross-attention. Received: "
                f"encoder_sequence={'None' if encoder_sequence is None else tuple(encoder_sequence.shape)}"
            )
        if has_cross and (self_attention_cache is None) != (cross_attention_cache is None):
            raise ValueError(
                "With an `encoder_sequence`, `self_attention_cache` and `cross_attention_cache` must "
                "both be given or both be None. Received: self_attention_cache="
                f"{'None' if self_attention_cache is None else 'a tensor'}, cross_attention_cache="
                f"{'None' if cross_attention_cache is None else 'a tensor'}"
            )

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
        use_causal_mask=True,
        training=None,
        return_attention_scores=False,
    ):
        self._check_call(encoder_sequence, self_attention_cache, cross_attention_cache)
        padding = parts.padding_of(decoder_sequence, decoder_padding_mask)
        cached = self_attention_cache is not None

        def attend_self(x):  # with a cache, the keys' padding is not known: mask queries only
            return parts.as_tuple(
                self.self_attention(
                    x,
                    x,
                    query_mask=padding,
                    value_mask=None if cached else padding,
                    attention_mask=decoder_attention_mask,
                    use_causal_mask=use_causal_mask,
                    cache=self_attention_cache,
                    cache_update_index=self_attention_cache_update_index,
                    return_attention_scores=return_attention_scores,
                    training=training,
                )
            )

        x, self_extra = self.residual(
            decoder_sequence, attend_self, self.self_attention_layer_norm, self.self_attention_dropout, training
        )
        caches, scores = [], []
        _collect(self_extra, return_attention_scores, cached, caches, scores)
        if self.cross_attention is not None:
            encoder_padding = parts.padding_of(encoder_sequence, encoder_padding_mask)

            def attend_encoder(x):
                return parts.as_tuple(
                    self.cross_attention(
                        x,
                        encoder_sequence,
                        query_mask=padding,
                        value_mask=encoder_padding,
                        attention_mask=encoder_attention_mask,
                        cache=cross_attention_cache,
                        cache_update_index=cross_attention_cache_update_index,
                        return_attention_scores=return_attention_scores,
                        training=training,
                    )
                )

            x, cross_extra = self.residual(
                x, attend_encoder, self.cross_attention_layer_norm, self.cross_attention_dropout, training
            )
            _collect(cross_extra, return_attention_scores, cached, caches, scores)
        x, _ = self.residual(x, self.feedforward, self.feedforward_layer_norm, self.feedforward_dropout, training)
        outputs = (x, *caches, *scores)
        return outputs if len(outputs) > 1 else x

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return tuple(decoder_sequence_shape)

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence=None,
        self_attention_cache=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        **kwargs,
    ):
        batch, length = decoder_sequence.shape[0], decoder_sequence.shape[1]
        output = keras.KerasTensor(decoder_sequence.shape, dtype=self.compute_dtype)
        caches = [
            keras.KerasTensor(c.shape, dtype=c.dtype)
            for c in (self_attention_cache, cross_attention_cache)
            if c is not None
        ]
        scores = []
        if return_attention_scores:
            keys = [self_attention_cache.shape[2] if self_attention_cache is not None else length]
            if encoder_sequence is not None:
                keys.append(
                    cross_attention_cache.shape[2] if cross_attention_cache is not None else encoder_sequence.shape[1]
                )
            scores = [keras.KerasTensor((batch, self.num_heads, length, k), dtype=self.compute_dtype) for k in keys]
        outputs = (output, *caches, *scores)
        return outputs if len(outputs) > 1 else output


def _collect(extra, with_scores, cached, caches, scores):
    """Sort a sublayer's extra outputs ([scores], [cache]) into `caches` and `scores`."""
    if with_scores:
        scores.append(extra[0])
    if cached:
        caches.append(extra[-1])
