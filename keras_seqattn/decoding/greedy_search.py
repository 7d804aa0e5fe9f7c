"""Greedy decoding: the most likely next token at every step. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding.sampler import Sampler


class GreedySampler(Sampler):
    """Chooses the argmax token at each step (see `greedy_search`).

    Example (a bigram table: 2 is followed by 1, then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> ksa.decoding.GreedySampler()(step_fn, {}, [2], end_id=0, max_length=3).sequences.numpy().tolist()
    [[1, 0, 0]]
    """

    name = "greedy_search"

    def next_tokens(self, logits, step, seed, history, seen):
        return tf.argmax(logits, axis=-1, output_type=tf.int32)


def greedy_search(step_fn, initial_state, start_ids, end_id, max_length, return_alignments=False,
                  jit_compile="auto", prompt=None, prompt_mask=None, prefill_fn=None, stop_ids=None):
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
        jit_compile: True or False: whether the loop compiles with XLA; "auto" (the default):
            as the attention policy says (`AttentionPolicy.search_xla_rows`: on a CPU, from 4
            rows on, since XLA's code for one row's matrix-vector products is slower than
            TensorFlow's kernels; on GPUs and TPUs always).
        prompt: instead of `start_ids` (pass None), a prompt to continue: `(batch, P)` ids with a
            `prompt_mask` (True = a token; left, right or any padding) or without one, or a
            `tf.RaggedTensor` of rows of different lengths. Each row continues from its own end;
            `step` is then the position of the token fed (the cache index of a decoder stack).
        prompt_mask: the prompt's mask, `(batch, P)` boolean.
        prefill_fn: `prefill_fn(prompt_ids (batch, P), state) -> state`: the prompt through the
            model in one call (filling the caches), before the loop; without it the loop feeds the
            prompt one token at a time. Both give the same result.
        stop_ids: more tokens that end a sequence besides `end_id` (after which it holds `end_id`).

    Returns `Decoded(sequences, scores)`: `sequences (batch, max_length)` int32 (after the stop
    token, filled with `end_id`) and `scores (batch,)`, the summed log-probabilities of the tokens up
    to and including the stop token; with `return_alignments`, `DecodedWithAlignments(...,
    alignments)`, `alignments (batch, max_length, source_length)` (zero after the end). With a
    prompt, `Generated(sequences, scores, lengths)`: `sequences (batch, P + max_length)`, each row's
    prompt (right-aligned to its start) followed by up to `max_length` generated tokens, and
    `lengths (batch,)`, the prompt and generated tokens of each row (the stop token included).

    Example (a bigram model: 2 is followed by 1, then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = greedy_search(step_fn, {}, [2, 1], end_id=0, max_length=3)
    >>> sequences.numpy().tolist(), [round(float(score), 2) for score in scores]
    ([[1, 0, 0], [0, 0, 0]], [-0.8, -0.11])
    """
    return GreedySampler()(step_fn, initial_state, start_ids, end_id, max_length, return_alignments, jit_compile,
                           prompt=prompt, prompt_mask=prompt_mask, prefill_fn=prefill_fn, stop_ids=stop_ids)
