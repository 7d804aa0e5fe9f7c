"""Greedy decoding: the most likely next token at every step, as one XLA-compiled loop (which
`sample_search` shares)."""

import tensorflow as tf

from keras_seqattn.decoding import state as search


def greedy_search(step_fn, initial_state, start_ids, end_id, max_length, return_alignments=False,
                  jit_compile=True):
    """Decode by taking the argmax token at each step until `end_id` or `max_length` tokens.

    Args:
        step_fn: `step_fn(token_ids (batch,), state, step) -> (logits (batch, vocab), new_state)`;
            see `keras_seqattn.decoding.beam_search` for the contract.
        initial_state: nested structure of tensors, each with leading dimension `batch`.
        start_ids: `(batch,)` int, the first input tokens.
        end_id: int, the token that ends a sequence.
        max_length: int, the number of tokens generated at most.
        return_alignments: also return the `"attention"` entry of the state at every step.
        jit_compile: compile the loop with XLA (default True).

    Returns `sequences (batch, max_length)` int32 (after `end_id`, filled with `end_id`) and
    `scores (batch,)`, the summed log-probabilities of the tokens up to and including `end_id`;
    with `return_alignments`, also `alignments (batch, max_length, source_length)` (zero after the end).
    """
    start_ids = search.check_search_args("greedy_search", start_ids, end_id, max_length)
    if return_alignments:
        search.attention_of(initial_state, "return_alignments")

    settings = (step_fn, end_id, max_length, bool(return_alignments), None)
    return search.run_loop(one_path_loop, settings, jit_compile, start_ids, initial_state, None)


def one_path_loop(step_fn, end_id, max_length, return_alignments, sampling, start_ids, initial_state, seed, *,
                  traced):
    """The loop of `greedy_search`, and of `sample_search` when `sampling` is
    `(temperature, top_k)`: each step's token is then drawn with the stateless seed
    `fold_in(seed, step)` instead of taken as the argmax. The trace writes the vocabulary size
    into `traced.vocabulary`."""
    start_ids = tf.cast(start_ids, tf.int32)
    batch = tf.shape(start_ids)[0]
    sequences = tf.fill([batch, max_length], end_id)
    alignments = ()
    if return_alignments:
        source_length = tf.shape(initial_state[search.ATTENTION])[1]
        alignments = tf.zeros([batch, max_length, source_length])

    def body(*inputs):
        step, tokens, state, finished, sequences, scores, alignments = inputs
        log_probs, state = search.call_step(step_fn, tokens, state, step, end_id)
        traced.vocabulary = log_probs.shape[-1]
        if sampling is None:
            chosen = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        else:
            chosen = _draw(log_probs, *sampling, tf.random.experimental.stateless_fold_in(seed, step))
        tokens = tf.where(finished, end_id, chosen)
        token_log_probs = tf.gather(log_probs, tokens, batch_dims=1)
        scores += tf.where(finished, 0.0, token_log_probs)
        sequences = search.write_at(sequences, step, tokens, axis=1)
        if return_alignments:
            attention = search.attention_in(state)
            attention = tf.where(finished[:, None], 0.0, attention)
            alignments = search.write_at(alignments, step, attention, axis=1)
        finished = finished | tf.equal(tokens, end_id)
        outputs = step + 1, tokens, state, finished, sequences, scores, alignments
        return search.keep_shapes(outputs, inputs)

    def cond(step, tokens, state, finished, *_):
        return (step < max_length) & ~tf.reduce_all(finished)

    loop_vars = (tf.constant(0), start_ids, initial_state, tf.zeros([batch], tf.bool),
                 sequences, tf.zeros([batch]), alignments)
    _, _, _, _, sequences, scores, alignments = tf.while_loop(cond, body, loop_vars)
    results = (sequences, scores, alignments) if return_alignments else (sequences, scores)
    return results


def _draw(log_probs, temperature, top_k, seed):
    """One token per row from softmax(log_probs / temperature), among the `top_k` most likely
    (all when None)."""
    vocabulary = log_probs.shape[-1]
    if top_k is not None and vocabulary is not None and top_k > vocabulary:
        raise ValueError(f"`top_k` must be at most the vocabulary size, {vocabulary}. Received: top_k={top_k}")
    logits = log_probs / temperature
    if top_k is None:
        return tf.cast(tf.random.stateless_categorical(logits, 1, seed)[:, 0], tf.int32)
    best, ids = tf.math.top_k(logits, k=top_k)
    return tf.gather(ids, tf.random.stateless_categorical(best, 1, seed), batch_dims=1)[:, 0]
