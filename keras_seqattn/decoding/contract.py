"""The step-function contract every search (greedy, sampling, beam) relies on, written once, and
what they share to keep it: argument checks, the step call, history buffers, named results.
TensorFlow only (the searches are TensorFlow loops).

`step_fn(token_ids, state, step) -> (logits, new_state)`:
- `token_ids`: the last tokens, `(rows,)` int32 (for beam search, hypothesis k of input b is row
  b * beam_width + k);
- `state`: any nested structure of tensors whose leaves have leading dimension `rows` (an RNN
  state, Transformer caches, encoder outputs);
- `step`: the index of the token being predicted, a scalar int32 from 0;
- `logits`: `(rows, vocabulary)`; `new_state`: the structure, shapes and dtypes of `state`. A leaf
  returned unchanged (the very same tensor) is the same for every hypothesis of an input, and
  beam search leaves it in place instead of reordering it.
When `new_state` is a dict with an `"attention"` entry `(rows, source_length)` (this step's
alignment over the source), the searches can return the alignment history and beam search can
apply a coverage penalty.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_seqattn.ops import checks

ATTENTION = "attention"


class Decoded(NamedTuple):
    """What a search returns: `sequences` (with `end_id` after the end) and their `scores`."""
    sequences: tf.Tensor
    scores: tf.Tensor


class DecodedWithAlignments(NamedTuple):
    """A search's result with the `alignments` of every generated token (zero after the end)."""
    sequences: tf.Tensor
    scores: tf.Tensor
    alignments: tf.Tensor


def check_search_args(search, start_ids, end_id, max_length):
    """Check the backend and the arguments every search takes; return `start_ids` as an int32
    tensor (from a list, a tuple, a NumPy array or a tensor)."""
    checks.check_tensorflow_backend(f"`{search}`")
    checks.check_rank("start_ids", start_ids, (1,))
    checks.check_non_negative_int("end_id", end_id)
    checks.check_positive_int("max_length", max_length)
    dtype = tf.as_dtype(getattr(start_ids, "dtype", None) or np.asarray(start_ids).dtype)
    if not dtype.is_integer:
        raise ValueError(f"`start_ids` must hold integer token ids. Received: start_ids of dtype {dtype.name}")
    return tf.cast(start_ids, tf.int32)


def check_attention(state, needed_by):
    """`state` must carry this step's alignment; `needed_by` names the argument that asked."""
    if not isinstance(state, dict) or ATTENTION not in state:
        raise ValueError(
            f"`{needed_by}` needs the attention weights: `step_fn` must return a dict state with an "
            f"'{ATTENTION}' entry of shape (batch * beam, source_length). Received a state of type "
            f"{type(state).__name__}" + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))


def attention_in(state):
    """This step's alignment `(rows, S)` float32 from a checked state."""
    return tf.cast(state[ATTENTION], tf.float32)


def call_step(step_fn, tokens, state, step, end_id):
    """Run `step_fn`; return float32 log-probabilities `(rows, vocabulary)` and the new state.
    `end_id` must be in the vocabulary (checked when its size is known when traced)."""
    logits, new_state = step_fn(tokens, state, step)
    tf.nest.assert_same_structure(state, new_state)
    vocabulary = logits.shape[-1]
    if vocabulary is not None and end_id >= vocabulary:
        raise ValueError(f"`end_id` must be a token of the step function's vocabulary of {vocabulary} "
                         f"(logits of shape {tuple(logits.shape)}). Received: end_id={end_id}")
    return tf.nn.log_softmax(tf.cast(logits, tf.float32)), new_state


def write_at(buffer, step, values, axis):
    """`buffer[(:,) * axis + (step,)] = values`: write one step of a history buffer."""
    length = tf.shape(buffer)[axis]
    at_step = tf.equal(tf.range(length), step)
    at_step = tf.reshape(at_step, [1] * axis + [-1] + [1] * (buffer.shape.rank - axis - 1))
    return tf.where(at_step, tf.expand_dims(values, axis), buffer)


def keep_shapes(new, old):
    """Give the loop variables of the next iteration the static shapes they entered with."""
    for new_tensor, old_tensor in zip(tf.nest.flatten(new), tf.nest.flatten(old)):
        new_tensor.set_shape(old_tensor.shape)
    return new
