"""The mechanism Bahdanau and Luong attention share: masks, softmax (or the monotonic alignment),
context, hard attention, feature-map values. Subclasses build their weights and define
`_project_key` (the part of the score that depends on the key only, done once per sequence),
`_attend` (score the projected keys and attend) and `_scores` (the raw scores, for monotonic
attention)."""

import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.layers.hard_attention import get_hard_attention, serialize_hard_attention
from keras_seqattn.ops import masks
from keras_seqattn.ops.attention import dropout_multiplier
from keras_seqattn.ops.axes import flatten_feature_map
from keras_seqattn.ops.monotonic import monotonic_alignment


class ScoreAttention(keras.layers.Layer):
    """Base of the RNN-style attention layers: one score per (query, key) pair, softmax over the
    keys, the context is the weighted sum of the values. Not used directly."""

    def __init__(
        self,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        seed=None,
        monotonic=False,
        score_bias_init=0.0,
        sigmoid_noise=0.0,
        sampling="soft",
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_rate("dropout", dropout)
        checks.check_number("sigmoid_noise", sigmoid_noise, 0, strict=False)
        if not isinstance(score_bias_init, (int, float)):
            raise ValueError(f"`score_bias_init` must be a float. Received: score_bias_init={score_bias_init!r}")
        if monotonic and dropout > 0:
            raise ValueError(
                "Monotonic attention takes no `dropout` (its weights are an alignment, "
                f"not a softmax): pass `dropout=0` with `monotonic=True`. Received: dropout={dropout!r}"
            )
        self.sampler = get_hard_attention(sampling, seed)
        if self.sampler is not None and (monotonic or dropout > 0):
            raise ValueError(
                "Hard attention (`sampling`) takes neither `monotonic=True` nor `dropout`: it draws one "
                f"position from the softmax weights. Received: sampling={sampling!r}, "
                f"monotonic={monotonic}, dropout={dropout}"
            )
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.monotonic = bool(monotonic)
        self.score_bias_init = float(score_bias_init)
        self.sigmoid_noise = float(sigmoid_noise)
        self.supports_masking = True
        random = dropout > 0 or (self.monotonic and sigmoid_noise > 0)
        self.seed_generator = keras.random.SeedGenerator(seed) if random else None

    def _build_monotonic(self):
        if self.monotonic:
            self.score_bias = self.add_weight(
                name="score_bias", shape=(), initializer=keras.initializers.Constant(self.score_bias_init)
            )

    def project_key(self, key):
        """The key-only part of the score, `(batch, Tv, dk)` (or a feature map `(batch, H, W, dk)`,
        flattened to H·W positions) -> `(batch, Tv, ·)`. Compute it once per source sequence and
        pass it as `projected_key` to every decoding step."""
        if not self.built:
            raise ValueError(
                f"Layer `{self.name}` is not built yet: call it once or call "
                "`build(query_shape, value_shape)` before `project_key`. Received: built=False"
            )
        checks.check_rank("key", key, (3, 4))
        if len(key.shape) == 4:
            key, _ = flatten_feature_map(key)
        return self._project_key(key)

    def _project_key(self, key):
        raise NotImplementedError

    def _attend(self, query, projected_key, value, value_mask, mask, multiplier, **local):
        raise NotImplementedError

    def _scores(self, query, projected_key):
        """The raw scores `(batch, Tq, Tv)`."""
        raise NotImplementedError

    def _run(
        self,
        query,
        value,
        key,
        query_mask,
        value_mask,
        projected_key,
        return_attention_scores,
        training,
        previous_alignment=None,
        **local,
    ):
        checks.check_rank("query", query, (2, 3))
        checks.check_rank("value", value, (3, 4))
        if key is not None:
            checks.check_rank("key", key, (len(value.shape),))
        checks.check_dims_match("query", query.shape[0], "value", value.shape[0], "batch size")
        checks.check_mask_shape("value_mask", value_mask, tuple(value.shape[:-1]))
        feature_map = None
        if len(value.shape) == 4:  # (batch, H, W, C): attend over its H·W positions
            feature_map = ops.shape(value)[1:3]
            value, value_mask = flatten_feature_map(value, value_mask)
            key = None if key is None else flatten_feature_map(key)[0]
        single_step = len(query.shape) == 2
        if single_step:  # one decoder step: (batch, dq) -> (batch, 1, dq), and no query padding
            query, query_mask = ops.expand_dims(query, 1), None
        checks.check_mask_shape("query_mask", query_mask, (query.shape[0], query.shape[1]))
        if projected_key is None:
            projected_key = self.project_key(value if key is None else key)
        if self.monotonic:
            if feature_map is not None and previous_alignment is not None:
                previous_alignment = ops.reshape(previous_alignment, (ops.shape(value)[0], -1))
            outputs = self._monotonic(
                query, projected_key, value, value_mask, previous_alignment, single_step, training
            )
            return _with_feature_map(outputs, feature_map, return_attention_scores)
        mask = masks.attention_mask(query_mask=query_mask, value_mask=value_mask)  # (B, Tq|1, Tv)
        multiplier = None
        if training and self.dropout > 0:
            shape = (ops.shape(query)[0], ops.shape(query)[1], ops.shape(value)[1])
            multiplier = dropout_multiplier(shape, self.dropout, self.seed_generator)
        context, weights = self._attend(query, projected_key, value, value_mask, mask, multiplier, **local)
        if self.sampler is not None:  # the value at the drawn (or most likely) position
            positions = self.sampler(weights, training=training)
            context = ops.einsum("bqs,bsd->bqd", ops.cast(positions, value.dtype), value)
            outputs = (context, weights, ops.cast(positions, weights.dtype))
        else:
            outputs = (context, weights)
        if single_step:
            outputs = tuple(ops.squeeze(x, 1) for x in outputs)
        return _with_feature_map(outputs, feature_map, return_attention_scores)

    def _monotonic(self, query, projected_key, value, value_mask, previous_alignment, single_step, training):
        """Raffel et al.'s alignment of one decoder step: expected while training, hard otherwise."""
        if not single_step or previous_alignment is None:
            raise ValueError(
                "Monotonic attention runs one decoder step at a time: `query` must be (batch, dq) and "
                "`previous_alignment` (batch, Tv) the previous step's weights. Received: "
                f"query.shape={tuple(query.shape)}, previous_alignment={previous_alignment!r}"
            )
        checks.check_mask_shape("previous_alignment", previous_alignment, (value.shape[0], value.shape[1]))
        scores = ops.cast(self._scores(query, projected_key)[:, 0] + self.score_bias, "float32")
        if training and self.sigmoid_noise > 0:  # pushes the choose probabilities towards 0 or 1
            scores = scores + self.sigmoid_noise * keras.random.normal(ops.shape(scores), seed=self.seed_generator)
        weights = monotonic_alignment(scores, previous_alignment, value_mask, hard=not training)
        context = ops.einsum("bs,bsd->bd", ops.cast(weights, value.dtype), value)
        return context, ops.cast(weights, value.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            sampling=serialize_hard_attention(self.sampler),
            monotonic=self.monotonic,
            score_bias_init=self.score_bias_init,
            sigmoid_noise=self.sigmoid_noise,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            seed=self.seed,
        )
        return config


def _with_feature_map(outputs, feature_map, return_attention_scores):
    """`(context, weights[, positions])`, the weights over a feature map's positions back to
    `(..., H, W)`; the context alone unless asked."""
    if not return_attention_scores:
        return outputs[0]
    if feature_map is None:
        return outputs
    context, *weights = outputs
    return (context, *(ops.reshape(w, (*ops.shape(w)[:-1], *feature_map)) for w in weights))
