"""What the searches (greedy, sampling, beam) share: argument checks, the step-function contract,
nested state.

`step_fn(token_ids, state, step)` gets the last tokens `(rows,)` int32, the nested state (every leaf
with leading dimension `rows`) and the step index (scalar int32), and returns
`(logits (rows, vocab), new_state)` with `new_state` of the same structure, shapes and dtypes.
When `new_state` is a dict with an `"attention"` entry `(rows, source_length)` (this step's
alignment over the source), the searches can return the alignment history and beam search can
apply a coverage penalty.
"""

import functools
import types

import numpy as np
import tensorflow as tf

from keras_seqattn.ops import checks

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


def attention_of(state, needed_by):
    """This step's alignment `(rows, S)` from `state`; `needed_by` names the argument that asked."""
    if not isinstance(state, dict) or ATTENTION not in state:
        raise ValueError(
            f"`{needed_by}` needs the attention weights: `step_fn` must return a dict state with an "
            f"'{ATTENTION}' entry of shape (batch * beam, source_length). Received a state of type "
            f"{type(state).__name__}" + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
    return tf.cast(state[ATTENTION], tf.float32)


def attention_in(state):
    """This step's alignment from a state `attention_of` has already checked."""
    return tf.cast(state[ATTENTION], tf.float32)


def call_step(step_fn, tokens, state, step, end_id):
    """Run `step_fn` and return float32 log-probabilities `(rows, vocab)` and the new state;
    `end_id` must be in the vocabulary (when its size is known when traced)."""
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


def run_loop(loop, settings, jit_compile, start_ids, *inputs):
    """Run `loop(*settings, start_ids, *inputs, traced=...)` (tensors and nested state) as one
    function, XLA-compiled unless `jit_compile=False`. The loop's trace writes the vocabulary size
    of the step function into `traced.vocabulary`: `start_ids` known when called (eagerly) are
    checked against it before the search runs. The function is kept for the 16 most recent (loop,
    settings, jit_compile), `step_fn` among the settings, so eager calls with the same step
    function trace once (and XLA compiles once per input shape); inside a caller's `tf.function`
    (a SavedModel signature, say) it is traced with the caller."""
    try:
        function, traced = _compiled(loop, settings, jit_compile)
    except TypeError:  # an unhashable step_fn: compile for this call only
        function, traced = _compiled.__wrapped__(loop, settings, jit_compile)
    function.get_concrete_function(start_ids, *inputs)  # traces, unless already traced
    vocabulary = traced.vocabulary
    if vocabulary is not None and tf.executing_eagerly():
        ids = start_ids.numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
            raise ValueError(f"`start_ids` must be tokens of the step function's vocabulary of {vocabulary}. "
                             f"Received: start_ids={ids.tolist()}")
    return function(start_ids, *inputs)


@functools.lru_cache(maxsize=16)
def _compiled(loop, settings, jit_compile):
    traced = types.SimpleNamespace(vocabulary=None)

    def search(*inputs):
        return loop(*settings, *inputs, traced=traced)

    return tf.function(search, jit_compile=jit_compile, autograph=False, reduce_retracing=True), traced
