import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.positions import rotate

ROPE_TYPES = ("linear", "dynamic")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class RotaryEmbedding(keras.layers.Layer):
    """Rotary position embedding (Su et al., 2021), a drop-in for `keras_hub.layers.RotaryEmbedding`
    (the same arguments, for its "linear" and "dynamic" scalings, and the same values).

    RoPE(x, p) = x ∘ cos(p θ) + rotate_half(x) ∘ sin(p θ),   θ_i = max_wavelength^(-2i/d) / s

    for the step of x at position p, the feature halves x = [x_1, x_2] (rotate_half(x) = [-x_2,
    x_1]) and s = `scaling_factor` ("linear"; "dynamic" divides by s^(d / (d - 2)) instead). The
    dot product of two rotated vectors depends on their positions only through their difference,
    which is why `MultiHeadAttention(rope_max_wavelength=...)` rotates queries and keys inside
    attention instead of adding positions to the inputs.

    Args:
        max_wavelength: the longest wavelength of the rotations.
        scaling_factor: divides the frequencies (position interpolation), > 0.
        rope_type: "linear" or "dynamic".
        sequence_axis: the axis of the positions (1 for `(batch, T, ..., d)`).
        feature_axis: the axis rotated (-1); its size must be even.

    Call arguments:
        inputs: a tensor with a sequence axis and a feature axis, e.g. `(batch, T, d)` or
            `(batch, T, heads, d)`.
        start_index: the position of the first step (int or scalar tensor), for cached decoding.
        positions: optional positions `(T,)` or `(batch, T)`, instead of `start_index + arange(T)`.

    Example:
    >>> x = keras.random.normal((2, 6, 4, 8))  # (batch, T, heads, d)
    >>> RotaryEmbedding()(x).shape
    TensorShape([2, 6, 4, 8])

    Reference: Su, Lu, Pan, Murtadha, Wen & Liu, "RoFormer: Enhanced Transformer with Rotary Position
    Embedding", 2021, section 3.4.
    """

    def __init__(
        self, max_wavelength=10000, scaling_factor=1.0, rope_type="linear", sequence_axis=1, feature_axis=-1, **kwargs
    ):
        super().__init__(**kwargs)
        checks.check_number("max_wavelength", max_wavelength, 0, strict=True)
        checks.check_number("scaling_factor", scaling_factor, 0, strict=True)
        checks.check_choice("rope_type", rope_type, ROPE_TYPES)
        for name, axis in (("sequence_axis", sequence_axis), ("feature_axis", feature_axis)):
            if isinstance(axis, bool) or not isinstance(axis, int):
                raise ValueError(f"`{name}` must be an int. Received: {name}={axis!r}")
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.rope_type = rope_type
        self.sequence_axis = sequence_axis
        self.feature_axis = feature_axis
        self.built = True

    def call(self, inputs, start_index=0, positions=None):
        rank = len(inputs.shape)
        sequence_axis, feature_axis = self.sequence_axis % rank, self.feature_axis % rank
        if sequence_axis == feature_axis or sequence_axis == 0:
            raise ValueError(
                "`sequence_axis` and `feature_axis` must be two different axes after the batch axis. "
                f"Received: sequence_axis={self.sequence_axis}, feature_axis={self.feature_axis} "
                f"for inputs of rank {rank}"
            )
        depth = inputs.shape[feature_axis]
        if depth is not None and depth % 2:
            raise ValueError(f"The rotated axis must have an even size. Received: inputs.shape={tuple(inputs.shape)}")
        x = ops.moveaxis(inputs, (sequence_axis, feature_axis), (1, -1))
        if positions is None:
            positions = ops.arange(ops.shape(x)[1], dtype="float32") + ops.cast(start_index, "float32")
        scaling = self.scaling_factor
        if self.rope_type == "dynamic":
            scaling = self.scaling_factor ** (depth / max(1, depth - 2))
        out = rotate(x, positions, self.max_wavelength, scaling)
        return ops.moveaxis(out, (1, -1), (sequence_axis, feature_axis))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            max_wavelength=self.max_wavelength,
            scaling_factor=self.scaling_factor,
            rope_type=self.rope_type,
            sequence_axis=self.sequence_axis,
            feature_axis=self.feature_axis,
        )
        return config
