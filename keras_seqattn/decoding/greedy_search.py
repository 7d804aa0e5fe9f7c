"""Greedy decoding: the most likely next token at every step. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding.sampler import Sampler


class GreedySampler(Sampler):
    """Chooses the argmax token at each step (see `greedy_search`)."""

    name = "greedy_search"

    def next_tokens(self, log_probs, step, seed):
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


def greedy_search(step_fn, initial_state, start_ids, end_id, max_length, return_alignments=False,
                  jit_compile=True):
    """Decode by taking the argmax token at each step until `end_id` or `max_length` tokens.

    Args:
        step_fn: `step_fn(token_ids (batch,), state, step) -> (logits (batch, vocab), new_state)`;
            see `keras_seqattn.decoding.contract` for the contract.
        initial_state: nested structure of tensors, each with leading dimension `batch`.
        start_ids: `(batch,)` int (a tensor, a NumPy array, a list or a tuple), the first input
            tokens.
        end_id: int, the token that ends a sequence.
        max_length: int, the number of tokens generated at most.
        return_alignments: also return the `"attention"` entry of the state at every step.
        jit_compile: compile the loop with XLA (default True).

    Returns `Decoded(sequences, scores)`: `sequences (batch, max_length)` int32 (after `end_id`,
    filled with `end_id`) and `scores (batch,)`, the summed log-probabilities of the tokens up to
    and including `end_id`; with `return_alignments`, `DecodedWithAlignments(..., alignments)`,
    `alignments (batch, max_length, source_length)` (zero after the end).

    Example (a bigram model: 2 is followed by 1, then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = greedy_search(step_fn, {}, [2, 1], end_id=0, max_length=3)
    >>> sequences.numpy().tolist(), scores.numpy().round(2).tolist()
    ([[1, 0, 0], [0, 0, 0]], [-0.8, -0.11])
    """
    return GreedySampler()(step_fn, initial_state, start_ids, end_id, max_length, return_alignments, jit_compile)
