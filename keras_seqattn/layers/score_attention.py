"""The mechanism Bahdanau and Luong attention share: masks, softmax, context. Subclasses build
their weights and define `project_key` (the part of the score that depends on the key only, done
once per sequence) and `_attend` (score the projected keys and attend)."""

import keras
from keras import ops

from keras_seqattn.ops import checks
from keras_seqattn.ops import masks
from keras_seqattn.ops.attention import dropout_multiplier


class ScoreAttention(keras.layers.Layer):
    """Base of the RNN-style attention layers: one score per (query, key) pair, softmax over the
    keys, the context is the weighted sum of the values. Not used directly."""

    def __init__(self, dropout=0.0, kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        checks.check_rate("dropout", dropout)
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    def project_key(self, key):
        """The key-only part of the score, `(batch, Tv, dk)` -> `(batch, Tv, ·)`. Compute it once
        per source sequence and pass it as `projected_key` to every decoding step."""
        raise NotImplementedError

    def _check_built(self):
        if not self.built:
            raise ValueError(
                f"Layer `{self.name}` is not built yet: call it once or call "
                "`build(query_shape, value_shape)` before `project_key`. Received: built=False"
            )

    def _attend(self, query, projected_key, value, value_mask, mask, multiplier, **local):
        raise NotImplementedError

    def _run(self, query, value, key, query_mask, value_mask, projected_key,
             return_attention_scores, training, **local):
        checks.check_rank("query", query, (2, 3))
        checks.check_rank("value", value, (3,))
        if key is not None:
            checks.check_rank("key", key, (3,))
        checks.check_dims_match("query", query.shape[0], "value", value.shape[0], "batch size")
        checks.check_mask_shape("value_mask", value_mask, (value.shape[0], value.shape[1]))
        single_step = len(query.shape) == 2
        if single_step:  # one decoder step: (batch, dq) -> (batch, 1, dq), and no query padding
            query, query_mask = ops.expand_dims(query, 1), None
        checks.check_mask_shape("query_mask", query_mask, (query.shape[0], query.shape[1]))
        if projected_key is None:
            projected_key = self.project_key(value if key is None else key)
        mask = masks.attention_mask(query_mask=query_mask, value_mask=value_mask)  # (B, Tq|1, Tv)
        multiplier = None
        if training and self.dropout > 0:
            shape = (ops.shape(query)[0], ops.shape(query)[1], ops.shape(value)[1])
            multiplier = dropout_multiplier(shape, self.dropout, self.seed_generator)
        context, weights = self._attend(query, projected_key, value, value_mask, mask, multiplier, **local)
        if single_step:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return (context, weights) if return_attention_scores else context

    def get_config(self):
        config = super().get_config()
        config.update(
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            seed=self.seed,
        )
        return config
