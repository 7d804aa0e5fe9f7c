"""The step-function contract every search (greedy, sampling, beam) relies on, written once, and
what they share to keep it: argument checks, the step call, the prompt's packing, history buffers.
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
alignment over the source), the searches can return the attention history
(`return_attention_scores`) and beam search can apply a coverage penalty.
"""

import numpy as np
import tensorflow as tf

from keras_seqattn import checks

ATTENTION = "attention"


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


def check_stop_ids(stop_ids, end_id):
    """The tokens that end a sequence: `end_id` and `stop_ids` (ints >= 0), as a sorted tuple."""
    stop_ids = () if stop_ids is None else stop_ids
    if isinstance(stop_ids, int) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in stop_ids
    ):
        raise ValueError(f"`stop_ids` must be a list of token ids (ints >= 0). Received: stop_ids={stop_ids!r}")
    return tuple(sorted({end_id, *stop_ids}))


def check_attention(state, needed_by):
    """`state` must carry this step's alignment; `needed_by` names the argument that asked."""
    if not isinstance(state, dict) or ATTENTION not in state:
        raise ValueError(
            f"`{needed_by}` needs the attention weights: `step_fn` must return a dict state with an "
            f"'{ATTENTION}' entry of shape (batch * beam, source_length). Received a state of type "
            f"{type(state).__name__}" + (f" with keys {sorted(state)}" if isinstance(state, dict) else "")
        )


def attention_in(state):
    """This step's alignment `(rows, S)` float32 from a checked state."""
    return tf.cast(state[ATTENTION], tf.float32)


def call_step(step_fn, tokens, state, step, end_id):
    """Run `step_fn`; return its float32 logits `(rows, vocabulary)` and the new state. `end_id`
    must be in the vocabulary (checked when its size is known when traced)."""
    logits, new_state = step_fn(tokens, state, step)
    tf.nest.assert_same_structure(state, new_state)
    vocabulary = logits.shape[-1]
    if vocabulary is not None and end_id >= vocabulary:
        raise ValueError(
            f"`end_id` must be a token of the step function's vocabulary of {vocabulary} "
            f"(logits of shape {tuple(logits.shape)}). Received: end_id={end_id}"
        )
    return tf.cast(logits, tf.float32), new_state


def pack_prompt(prompt, prompt_mask):
    """A prompt as right-padded int32 ids `(batch, P)` (each row's tokens first, in order) and the
    rows' lengths: from a `tf.RaggedTensor`, or ids with a boolean mask (True = a token; left or
    right padding, or any) or without one (every position a token)."""
    if isinstance(prompt, tf.RaggedTensor):
        return tf.cast(prompt.to_tensor(0), tf.int32), tf.cast(prompt.row_lengths(), tf.int32)
    checks.check_rank("prompt", prompt, (2,))
    dtype = tf.as_dtype(getattr(prompt, "dtype", None) or np.asarray(prompt).dtype)
    if not dtype.is_integer:
        raise ValueError(f"`prompt` must hold integer token ids. Received: prompt of dtype {dtype.name}")
    prompt = tf.cast(prompt, tf.int32)
    if prompt_mask is None:
        return prompt, tf.fill([tf.shape(prompt)[0]], tf.shape(prompt)[1])
    mask_shape = tuple(prompt_mask.shape) if hasattr(prompt_mask, "shape") else np.shape(prompt_mask)
    if mask_shape != tuple(prompt.shape):
        raise ValueError(
            f"`prompt_mask` must have the prompt's shape {tuple(prompt.shape)}. "
            f"Received: prompt_mask.shape={mask_shape}"
        )
    prompt_mask = tf.cast(prompt_mask, tf.bool)
    order = tf.argsort(tf.cast(~prompt_mask, tf.int32), axis=1, stable=True)  # tokens first, in order
    packed = tf.where(tf.gather(prompt_mask, order, batch_dims=1), tf.gather(prompt, order, batch_dims=1), 0)
    return packed, tf.reduce_sum(tf.cast(prompt_mask, tf.int32), axis=1)


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
