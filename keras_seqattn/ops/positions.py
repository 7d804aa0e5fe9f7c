"""Position methods: encodings added to `(batch, T, d)` sequences (kernels that compile with XLA
where the attention policy says so), rotary embeddings and ALiBi slopes. Every Keras backend."""

import math

from keras import ops

from keras_seqattn.ops.policy import get_policy
from keras_seqattn.ops.xla import xla_kernel


def sinusoids(positions, depth, max_wavelength=10000.0):
    """PE(pos, 2i) = sin(pos / max_wavelength^(2i/d)), PE(pos, 2i+1) = cos(pos / max_wavelength^(2i/d)).

    `positions` `(T,)` -> `(T, depth)` float32 (Vaswani et al., 2017, section 3.5)."""
    dims = ops.arange(depth)
    even_dims = ops.cast(dims - dims % 2, "float32")  # 2i for both 2i and 2i + 1
    inverse_wavelengths = ops.power(float(max_wavelength), -even_dims / ops.cast(depth, "float32"))
    angles = ops.cast(positions, "float32")[:, None] * inverse_wavelengths[None, :]
    return ops.where(dims % 2 == 0, ops.sin(angles), ops.cos(angles))


@xla_kernel
def _add_sinusoids(inputs, start_index, *, max_wavelength):
    length, depth = ops.shape(inputs)[1], ops.shape(inputs)[2]
    positions = ops.arange(length) + ops.cast(start_index, "int32")
    return inputs + ops.cast(sinusoids(positions, depth, max_wavelength), inputs.dtype)


@xla_kernel
def _add_rows(inputs, table, start_index):
    length, depth = ops.shape(inputs)[1], ops.shape(inputs)[2]
    rows = ops.slice(table, (ops.cast(start_index, "int32"), 0), (length, depth))
    return inputs + ops.cast(rows, inputs.dtype)


def add_sinusoidal_encoding(inputs, start_index=0, max_wavelength=10000.0, *, policy=None):
    """`inputs` `(batch, T, d)` plus the sinusoids of positions `start_index ... start_index + T - 1`
    (`policy`: whether the kernel compiles, default `get_policy()`)."""
    return _add_sinusoids(
        inputs,
        ops.convert_to_tensor(start_index, "int32"),
        xla=(policy or get_policy()).plan().xla,
        max_wavelength=float(max_wavelength),
    )


def add_learned_encoding(inputs, table, start_index=0, *, policy=None):
    """`inputs` `(batch, T, d)` plus rows `start_index ... start_index + T - 1` of `table` `(L, d)`
    (`policy`: whether the kernel compiles, default `get_policy()`)."""
    return _add_rows(
        inputs,
        ops.convert_to_tensor(table),
        ops.convert_to_tensor(start_index, "int32"),
        xla=(policy or get_policy()).plan().xla,
    )


def rotary_inverse_frequencies(depth, max_wavelength=10000.0, scaling_factor=1.0):
    """θ_i = max_wavelength^(-2i/depth) / scaling_factor for i = 0 ... depth/2 - 1, float32."""
    exponents = ops.arange(0, depth, 2, dtype="float32") / float(depth)
    return ops.power(float(max_wavelength), -exponents) / float(scaling_factor)


def rotate(inputs, positions, max_wavelength=10000.0, scaling_factor=1.0):
    """Rotary position embedding (Su et al., 2021) of `inputs` `(batch, T, ..., d)` at
    `positions` `(T,)` or `(batch, T)`: the feature pairs (x_i, x_{i+d/2}) of the step at position
    p are rotated by the angle p·θ_i, i.e. x cos(pθ) + rotate_half(x) sin(pθ) with rotate_half(x) =
    [-x_2, x_1] for the halves x_1, x_2 (the half-split layout of keras-hub and GPT-NeoX).

    Example (a rotation keeps norms, and the score of two rotated vectors depends only on how far
    apart their positions are):
    >>> x = keras.random.normal((1, 1, 8), seed=0)
    >>> at = lambda p: ksa.ops.rotate(x, tf.constant([[p]]))
    >>> bool(np.allclose(np.linalg.norm(at(5)), np.linalg.norm(x), atol=1e-5))
    True
    >>> score = lambda a, b: float(tf.reduce_sum(at(a) * at(b)))
    >>> bool(np.isclose(score(3, 1), score(9, 7), atol=1e-4))
    True
    """
    depth = inputs.shape[-1]
    angles = ops.cast(positions, "float32")[..., None] * rotary_inverse_frequencies(
        depth, max_wavelength, scaling_factor
    )
    angles = ops.concatenate([angles, angles], axis=-1)  # (batch|1, T, d)
    if len(angles.shape) == 2:
        angles = angles[None]
    for _ in range(len(inputs.shape) - 3):  # the axes between T and d (heads)
        angles = ops.expand_dims(angles, -2)
    cos, sin = ops.cast(ops.cos(angles), inputs.dtype), ops.cast(ops.sin(angles), inputs.dtype)
    first, second = ops.split(inputs, 2, axis=-1)
    return inputs * cos + ops.concatenate([-second, first], axis=-1) * sin


def alibi_slopes(heads, bias_max=8):
    """ALiBi's per-head slopes (Press et al., 2022, section 3): for a power of two of heads n, the
    geometric sequence starting at 2^(-bias_max / n) with that ratio; otherwise the slopes of the
    largest power of two below n, then every other slope of twice that many (keras-hub's
    `AlibiBias`, the paper's code). A list of floats.

    Example:
    >>> [round(float(s), 4) for s in ksa.ops.alibi_slopes(4)]
    [0.25, 0.0625, 0.0156, 0.0039]
    """

    def powers_of_two(n):
        start = 2.0 ** (-bias_max / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(heads).is_integer():
        return powers_of_two(heads)
    closest = 2 ** math.floor(math.log2(heads))
    return powers_of_two(closest) + alibi_slopes(2 * closest, bias_max)[0::2][: heads - closest]
