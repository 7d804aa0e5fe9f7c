"""Beam search over any step function, as one XLA-compiled loop with static shapes."""

import tensorflow as tf

from keras_seqattn.decoding import state as search
from keras_seqattn.ops import checks

RANKINGS = ("gnmt", "tensorflow_addons")


def beam_search(step_fn, initial_state, start_ids, end_id, beam_width, max_length,
                length_penalty=0.0, coverage_penalty=0.0, return_alignments=False, jit_compile=True,
                ranking="gnmt"):
    """Keep the `beam_width` best hypotheses per input at every step; return them best first.

    score(Y) = log P(Y | X) / lp(Y) + cp(X; Y), with the GNMT penalties (Wu et al., 2016, eq. 14):
    lp(Y) = ((5 + |Y|) / 6)^α with α = `length_penalty` (|Y| counts the end token), and
    cp = β · Σⱼ log(min(Σᵢ aᵢⱼ, 1)) with β = `coverage_penalty`, where aᵢⱼ is the attention of target
    step i on source position j; positions whose attention stays exactly 0 (masked padding) are left
    out of the sum. Hypotheses are ranked by this score at every step and at the end.

    `ranking="tensorflow_addons"` ranks as tensorflow-addons' `BeamSearchDecoder` does instead, so
    that a migrated model reproduces its outputs: at the step a hypothesis chooses the end token,
    |Y| does not count that token yet (it does from the next step on), and the coverage penalty is
    added only to hypotheses that had finished before the step. With both penalties at 0 the two
    rankings are the same.

    Args:
        step_fn: `step_fn(token_ids, state, step) -> (logits, new_state)`. `token_ids` are the last
            tokens `(batch * beam_width,)` int32 (hypothesis k of input b in row b * beam_width + k),
            `state` the nested state with that leading dimension, `step` the index of the token
            being predicted (scalar int32, from 0). `logits` is `(batch * beam_width, vocab)` and
            `new_state` has the structure, shapes and dtypes of `state`. For the coverage penalty
            and `return_alignments`, the state is a dict whose `"attention"` entry holds this
            step's alignment `(batch * beam_width, source_length)`.
        initial_state: nested structure of tensors with leading dimension `batch` (an RNN state, a
            Transformer cache, the encoder outputs); the search tiles it across the beam and
            reorders it as hypotheses are chosen (leaves the step returns unchanged, the very same
            tensors, are left in place: they are equal for every hypothesis of an input).
        start_ids: `(batch,)` int, the first input tokens.
        end_id: int, the token that ends a hypothesis. A finished hypothesis is never extended:
            its score and length stay as they are.
        beam_width: int, the number of hypotheses kept per input.
        max_length: int, the number of tokens generated at most.
        length_penalty: α ≥ 0 (0: plain summed log-probabilities).
        coverage_penalty: β ≥ 0 (0: none).
        return_alignments: also return the alignment history of the chosen hypotheses.
        jit_compile: compile the loop with XLA (default True). Calls with the same `step_fn` and
            settings reuse one traced function (the 16 most recent are kept, and hold their
            `step_fn`); XLA compiles once per input shape.
        ranking: "gnmt" (Wu et al.'s score at every step) or "tensorflow_addons" (see above).

    Returns `sequences (batch, beam_width, max_length)` int32, best first, filled with `end_id`
    after the end token, and `scores (batch, beam_width)` float32; with `return_alignments`, also
    `alignments (batch, beam_width, max_length, source_length)` (zero after the end).

    Example (a bigram model; greedy decoding would give [2, 2, 2], log-probability -2.75):
    >>> table = tf.math.log([[.1, .6, .3], [.5, .1, .4], [.35, .25, .4]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = beam_search(step_fn, {}, tf.constant([2]), end_id=0, beam_width=2,
    ...                                 max_length=3)
    >>> print(sequences.numpy().tolist(), scores.numpy().round(2))
    [[[0, 0, 0], [2, 2, 2]]] [[-1.05 -2.75]]
    """
    start_ids = search.check_search_args("beam_search", start_ids, end_id, max_length)
    checks.check_positive_int("beam_width", beam_width)
    checks.check_number("length_penalty", length_penalty, 0, strict=False)
    checks.check_number("coverage_penalty", coverage_penalty, 0, strict=False)
    checks.check_choice("ranking", ranking, RANKINGS)
    if coverage_penalty:
        search.attention_of(initial_state, "coverage_penalty")
    if return_alignments:
        search.attention_of(initial_state, "return_alignments")

    settings = (step_fn, end_id, beam_width, max_length, float(length_penalty),
                float(coverage_penalty), bool(return_alignments), ranking)
    return search.run_loop(_loop, settings, jit_compile, start_ids, initial_state)


def _loop(step_fn, end_id, beam_width, max_length, length_penalty, coverage_penalty,
          return_alignments, ranking, start_ids, initial_state, *, traced):
    track_attention = bool(coverage_penalty) or return_alignments
    batch = tf.shape(start_ids)[0]
    state = tf.nest.map_structure(lambda x: tf.repeat(x, beam_width, axis=0), initial_state)
    tokens = tf.repeat(tf.cast(start_ids, tf.int32), beam_width)
    # Only the first hypothesis is live at the start, so the first step expands it alone.
    log_probs = tf.tile([[0.0] + [-float("inf")] * (beam_width - 1)], [batch, 1])
    zeros = tf.zeros([batch, beam_width])
    sequences = tf.fill([batch, beam_width, max_length], end_id)
    coverage = alignments = ()
    if track_attention:
        source_length = tf.shape(initial_state[search.ATTENTION])[1]
        coverage = tf.zeros([batch, beam_width, source_length])
        if return_alignments:
            alignments = tf.zeros([batch, beam_width, max_length, source_length])

    def body(*inputs):
        (step, tokens, old_state, log_probs, lengths, finished, sequences, scores, coverage,
         alignments) = inputs
        step_log_probs, state = search.call_step(step_fn, tokens, old_state, step, end_id)
        traced.vocabulary = step_log_probs.shape[-1]
        vocab = tf.shape(step_log_probs)[1]
        step_log_probs = tf.reshape(step_log_probs, [batch, beam_width, vocab])
        # A finished hypothesis may only repeat end_id, at no cost.
        only_end = tf.one_hot(end_id, vocab, on_value=0.0, off_value=-float("inf"))
        step_log_probs = tf.where(finished[..., None], only_end, step_log_probs)
        candidates = log_probs[..., None] + step_log_probs  # (batch, beam, vocab)
        growing = tf.cast(~finished, tf.float32)
        if ranking == "gnmt":  # every candidate counts its token, the end token too
            candidate_lengths = (lengths + growing)[..., None]
        else:  # tensorflow-addons: not the end token chosen at this step
            not_end = tf.cast(tf.not_equal(tf.range(vocab), end_id), tf.float32)
            candidate_lengths = lengths[..., None] + growing[..., None] * not_end
        lengths = lengths + growing
        candidate_scores = candidates / _length_penalty(candidate_lengths, length_penalty)
        if track_attention:
            attention = tf.reshape(search.attention_in(state), [batch, beam_width, -1])
            attention = tf.where(finished[..., None], 0.0, attention)
            coverage = coverage + attention
            if coverage_penalty:
                penalty = coverage_penalty * _coverage_log(coverage)
                if ranking == "tensorflow_addons":  # only hypotheses finished before this step
                    penalty = tf.where(finished, penalty, 0.0)
                candidate_scores += penalty[..., None]
        scores, chosen = tf.math.top_k(tf.reshape(candidate_scores, [batch, -1]), beam_width)
        beam, tokens = chosen // vocab, chosen % vocab  # (batch, beam) each

        def reorder(x):
            return tf.gather(x, beam, batch_dims=1)

        log_probs = tf.gather(tf.reshape(candidates, [batch, -1]), chosen, batch_dims=1)
        lengths, sequences = reorder(lengths), reorder(sequences)
        finished = reorder(finished) | tf.equal(tokens, end_id)
        sequences = search.write_at(sequences, step, tokens, axis=2)
        if track_attention:
            coverage = reorder(coverage)
            if return_alignments:
                alignments = search.write_at(reorder(alignments), step, reorder(attention),
                                              axis=2)
        rows = tf.reshape(beam + beam_width * tf.range(batch)[:, None], [-1])
        # A leaf the step passed through unchanged (encoder outputs, projected keys, a cross-
        # attention cache) is the same for every hypothesis of an input: it needs no reordering.
        state = tf.nest.map_structure(lambda new, old: new if new is old else tf.gather(new, rows),
                                      state, old_state)
        outputs = (step + 1, tf.reshape(tokens, [-1]), state, log_probs, lengths, finished,
                   sequences, scores, coverage, alignments)
        return search.keep_shapes(outputs, inputs)

    def cond(step, tokens, state, log_probs, lengths, finished, *_):
        return (step < max_length) & ~tf.reduce_all(finished)

    loop_vars = (tf.constant(0), tokens, state, log_probs, zeros, tf.zeros_like(zeros, tf.bool),
                 sequences, log_probs, coverage, alignments)
    outputs = tf.while_loop(cond, body, loop_vars)
    sequences, scores, alignments = outputs[6], outputs[7], outputs[9]
    results = (sequences, scores, alignments) if return_alignments else (sequences, scores)
    return results


def _length_penalty(lengths, alpha):
    return ((5.0 + lengths) / 6.0) ** alpha if alpha else tf.ones_like(lengths)


def _coverage_log(coverage):
    """Σⱼ log(min(coverage_j, 1)) over the source positions that received any attention."""
    attended = coverage > 0
    log_coverage = tf.math.log(tf.where(attended, tf.minimum(coverage, 1.0), 1.0))
    return tf.reduce_sum(log_coverage, axis=-1)
