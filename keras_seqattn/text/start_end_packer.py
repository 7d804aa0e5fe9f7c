"""Start and end tokens for teacher forcing, packed to a fixed length: a drop-in for keras-hub's
`StartEndPacker` on id sequences. TensorFlow ops, for tf.data pipelines and exported graphs."""

import keras
import tensorflow as tf

from keras_seqattn import checks


@keras.saving.register_keras_serializable(package="keras_seqattn")
class StartEndPacker(keras.layers.Layer):
    """Adds start and end ids to id sequences and pads or truncates them to `sequence_length`
    (as `keras_hub.layers.StartEndPacker`: the same arguments and outputs for ids).

    A sequence too long for its start and end ids is truncated first, so that the end id is always
    written. For teacher forcing, pack the decoder's inputs with `add_end_value=False` and its
    targets with `add_start_value=False`.

    Args:
        sequence_length: int, the length of the outputs.
        start_value: an int id, a list of ids, or None (nothing added at the start).
        end_value: an int id, a list of ids, or None (nothing added at the end).
        pad_value: the id of the padding (default 0, `Vocabulary.PAD`).
        return_padding_mask: also return a boolean mask, True at the ids (start and end included).
        padding_side: "right" (the default) or "left".

    Call arguments:
        inputs: ids `(batch, None)` as a `tf.RaggedTensor`, a dense tensor (every position an id),
            nested lists, or one sequence `(None,)`.
        sequence_length: overrides the layer's for this call.
        add_start_value: False to add no start id in this call.
        add_end_value: False to add no end id in this call.

    Returns `(batch, sequence_length)` int ids (`(sequence_length,)` for one sequence), and the
    mask with `return_padding_mask`.

    Example (teacher forcing with `Vocabulary`'s START = 1 and END = 2):
    >>> from keras_seqattn.text import StartEndPacker
    >>> packer = StartEndPacker(5, start_value=1, end_value=2)
    >>> ids = tf.ragged.constant([[7, 8], [9, 10, 11, 12, 13]])
    >>> packer(ids, add_end_value=False).numpy().tolist()
    [[1, 7, 8, 0, 0], [1, 9, 10, 11, 12]]
    >>> packer(ids, add_start_value=False).numpy().tolist()
    [[7, 8, 2, 0, 0], [9, 10, 11, 12, 2]]
    """

    def __init__(
        self,
        sequence_length,
        start_value=None,
        end_value=None,
        pad_value=0,
        return_padding_mask=False,
        padding_side="right",
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_positive_int("sequence_length", sequence_length)
        self.sequence_length = sequence_length
        self.start_value = _check_ids("start_value", start_value)
        self.end_value = _check_ids("end_value", end_value)
        if isinstance(pad_value, bool) or not isinstance(pad_value, int):
            raise ValueError(f"`pad_value` must be an int id. Received: pad_value={pad_value!r}")
        self.pad_value = pad_value
        self.return_padding_mask = bool(return_padding_mask)
        checks.check_choice("padding_side", padding_side, ("right", "left"))
        self.padding_side = padding_side
        self._convert_input_args = False  # ragged tensors and lists reach `call` as they are
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, inputs, sequence_length=None, add_start_value=True, add_end_value=True):
        length = self.sequence_length if sequence_length is None else sequence_length
        checks.check_positive_int("sequence_length", length)
        ids = (
            inputs
            if isinstance(inputs, tf.RaggedTensor)
            else tf.ragged.constant(inputs)
            if isinstance(inputs, (list, tuple))
            else tf.convert_to_tensor(inputs)
        )
        single = ids.shape.rank == 1
        if single:
            ids = ids[None]
        if ids.shape.rank != 2:
            raise ValueError(f"`inputs` must be ids of rank 1 or 2. Received: inputs.shape={ids.shape}")
        if not ids.dtype.is_integer:
            raise ValueError(f"`inputs` must hold integer ids. Received: inputs.dtype={ids.dtype.name}")
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        start = self.start_value if add_start_value else []
        end = self.end_value if add_end_value else []
        ids = ids[:, : max(length - len(start) - len(end), 0)]

        def column(values):  # the same ids on every row
            return tf.RaggedTensor.from_tensor(tf.tile(tf.constant([values], ids.dtype), [ids.nrows(), 1]))

        if start:
            ids = tf.concat([column(start), ids], axis=1)
        if end:
            ids = tf.concat([ids, column(end)], axis=1)
        ids = ids[:, :length]
        if self.padding_side == "left":  # pad on the left: reverse, pad on the right, reverse back
            packed = tf.reverse(tf.reverse(ids, [1]).to_tensor(self.pad_value, shape=[None, length]), [1])
            mask = tf.reverse(tf.ones_like(ids, tf.bool).to_tensor(False, shape=[None, length]), [1])
        else:
            packed = ids.to_tensor(self.pad_value, shape=[None, length])
            mask = tf.ones_like(ids, tf.bool).to_tensor(False, shape=[None, length])
        if single:
            packed, mask = packed[0], mask[0]
        return (packed, mask) if self.return_padding_mask else packed

    def compute_output_shape(self, input_shape):
        shape = (*tuple(input_shape)[:-1], self.sequence_length)
        return (shape, shape) if self.return_padding_mask else shape

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "start_value": _as_config(self.start_value),
            "end_value": _as_config(self.end_value),
            "pad_value": self.pad_value,
            "return_padding_mask": self.return_padding_mask,
            "padding_side": self.padding_side,
        }


def _check_ids(name, value):
    """None, an int or a list of ints -> a list of ints."""
    values = (
        []
        if value is None
        else [value]
        if isinstance(value, int) and not isinstance(value, bool)
        else list(value)
        if isinstance(value, (list, tuple))
        else None
    )
    if values is None or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"`{name}` must be None, an int id or a list of int ids. Received: {name}={value!r}")
    return values


def _as_config(values):
    return None if not values else values[0] if len(values) == 1 else list(values)
