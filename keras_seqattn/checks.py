"""Argument checks shared by the ops and the layers: every failure is a ValueError that names the
argument and what was received, raised before any TensorFlow op can fail less clearly."""

import keras
import numpy as np


def check_rank(name, value, ranks):
    """`value` (a tensor, an array, or nested lists or tuples of numbers) must have one of `ranks`."""
    shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    check_shape_rank(name, shape, ranks)


def check_shape_rank(name, shape, ranks):
    """`shape` (a tuple, list or TensorShape, as `build` receives) must have one of `ranks`."""
    shape = tuple(shape)
    if len(shape) not in ranks:
        ranks = list(ranks)
        expected = (
            f"{ranks[0]} to {ranks[-1]}"
            if len(ranks) > 2 and ranks == list(range(ranks[0], ranks[-1] + 1))
            else " or ".join(str(r) for r in ranks)
        )
        raise ValueError(f"`{name}` must have rank {expected}. Received: {name}.shape={shape}")


def check_dims_match(name_a, dim_a, name_b, dim_b, what):
    """Raise when two statically known dimensions differ (unknown ones are checked at run time)."""
    if dim_a is not None and dim_b is not None and dim_a != dim_b:
        raise ValueError(
            f"The {what} of `{name_a}` ({dim_a}) and `{name_b}` ({dim_b}) must match. "
            f"Received: {name_a} {what}={dim_a}, {name_b} {what}={dim_b}"
        )


def check_mask_shape(name, mask, expected):
    """`mask` must have the rank of `expected` and, per axis, the expected size or 1 (broadcast).

    `expected` is a tuple of ints or None (unknown)."""
    if mask is None:
        return
    shape = tuple(mask.shape) if hasattr(mask, "shape") else np.shape(mask)
    ok = len(shape) == len(expected) and all(
        got is None or want is None or got in (want, 1) for got, want in zip(shape, expected)
    )
    if not ok:
        raise ValueError(
            f"`{name}` must have shape {_show(expected)} (size-1 axes broadcast). Received: {name}.shape={shape}"
        )


def check_attention_mask(name, mask, expected, one_head):
    """A mask for `(batch, heads, T, S)` attention: `(batch, S)`, `(batch, T, S)` or (not for
    single-head inputs) `(batch, heads, T, S)`; `expected` = (batch, heads, T, S), None = unknown."""
    batch, heads, q_len, k_len = expected
    check_rank(name, mask, (2, 3) if one_head else (2, 3, 4))
    wanted = {2: (batch, k_len), 3: (batch, q_len, k_len), 4: tuple(expected)}[len(mask.shape)]
    check_mask_shape(name, mask, wanted)


def check_rate(name, value):
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")


def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"The argument `{name}` must be a positive integer. Received: {name}={value!r}")


def check_non_negative_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")


def check_number(name, value, minimum, strict):
    """`value` must be an int or float (not a bool, not NaN) > `minimum` (`strict`) or >= it."""
    valid = not isinstance(value, bool) and isinstance(value, (int, float))
    if not (valid and (value > minimum if strict else value >= minimum)):
        raise ValueError(f"`{name}` must be a number {'>' if strict else '>='} {minimum}. Received: {name}={value!r}")


def check_flash_attention(value):
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"`flash_attention` must be None, True or False. Received: flash_attention={value!r}")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")


def _show(shape):
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def check_tensorflow_backend(what):
    """`what` (a part of this package written in TensorFlow) needs Keras's TensorFlow backend."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{what} needs Keras's TensorFlow backend (KERAS_BACKEND=tensorflow): it runs TensorFlow "
            f"loops, not keras.ops. Received: backend={backend!r}"
        )


def check_output_shape(output_shape):
    """`output_shape` (a positive int, a tuple of them, or None) as a tuple, or None."""
    if output_shape is None:
        return None
    shape = (output_shape,) if isinstance(output_shape, int) else output_shape
    valid = (
        isinstance(shape, (tuple, list))
        and len(shape) > 0
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    )
    if not valid:
        raise ValueError(
            "Invalid `output_shape`: it must be a positive int or a tuple of positive ints. "
            f"Received: output_shape={output_shape!r}"
        )
    return tuple(shape)


def check_attention_shapes(query_shape, value_shape, key_shape, max_rank):
    """Inputs `(batch, d_1, ..., d_n, dim)` of one rank from 3 to `max_rank`; `value` and `key`
    equal but for dim."""
    query_shape, value_shape, key_shape = (tuple(s) for s in (query_shape, value_shape, key_shape))
    if value_shape[1:-1] != key_shape[1:-1]:
        raise ValueError(
            "All dimensions of `value` and `key`, except the last one, must be equal. "
            f"Received: value.shape={value_shape}, key.shape={key_shape}"
        )
    check_shape_rank("query", query_shape, range(3, max_rank + 1))
    if not len(query_shape) == len(value_shape):
        raise ValueError(
            "`query`, `value` and `key` must have the same rank. Received: "
            f"query.shape={query_shape}, value.shape={value_shape}, key.shape={key_shape}"
        )


def check_attention_axes(attention_axes):
    """None, an int or a tuple of ints, returned as None or a tuple."""
    if isinstance(attention_axes, int) and not isinstance(attention_axes, bool):
        return (attention_axes,)
    if attention_axes is None:
        return None
    if not isinstance(attention_axes, (list, tuple)) or not all(
        isinstance(a, int) and not isinstance(a, bool) for a in attention_axes
    ):
        raise ValueError(
            f"`attention_axes` must be None, an int or a tuple of ints. Received: attention_axes={attention_axes!r}"
        )
    return tuple(attention_axes)
