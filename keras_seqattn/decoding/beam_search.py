"""Beam search over any step function, as one XLA-compiled loop with static shapes. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding import contract
from keras_seqattn.decoding.sampler import Sampler
from keras_seqattn.ops import checks

RANKINGS = ("gnmt", "tensorflow_addons")


def beam_search(step_fn, initial_state, start_ids, end_id, beam_width, max_length,
                length_penalty=0.0, coverage_penalty=0.0, return_alignments=False, jit_compile="auto",
                ranking="gnmt", prompt=None, prompt_mask=None, prefill_fn=None, stop_ids=None):
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
        step_fn: `step_fn(token_ids, state, step) -> (logits, new_state)` (the contract of
            `keras_seqattn.decoding.contract`), called on `batch * beam_width` rows (hypothesis
            k of input b in row b * beam_width + k). For the coverage penalty and
            `return_alignments`, the state is a dict whose `"attention"` entry holds this step's
            alignment `(batch * beam_width, source_length)`.
        initial_state: nested structure of tensors with leading dimension `batch` (an RNN state, a
            Transformer cache, the encoder outputs); the search tiles it across the beam and
            reorders it as hypotheses are chosen (leaves the step returns unchanged, the very same
            tensors, are left in place: they are equal for every hypothesis of an input).
        start_ids: `(batch,)` int (a tensor, a NumPy array, a list or a tuple), the first tokens.
        end_id: int, the token that ends a hypothesis. A finished hypothesis is never extended:
            its score and length stay as they are.
        beam_width: int, the number of hypotheses kept per input.
        max_length: int, the number of tokens generated at most.
        length_penalty: α ≥ 0 (0: plain summed log-probabilities).
        coverage_penalty: β ≥ 0 (0: none).
        return_alignments: also return the alignment history of the chosen hypotheses.
        jit_compile: as in `greedy_search`. Calls with the same `step_fn` and
            settings reuse one traced function (kept while `step_fn`'s owner lives, without
            keeping it alive); XLA compiles once per input shape.
        ranking: "gnmt" (Wu et al.'s score at every step) or "tensorflow_addons" (see above).
        prompt: as in `greedy_search`; with a prompt, |Y| counts the generated tokens, and the
            result is `Generated` with `(batch, beam_width, ...)` sequences and lengths.
        prompt_mask: as in `greedy_search`.
        prefill_fn: as in `greedy_search`.
        stop_ids: as in `greedy_search`.

    Returns `Decoded(sequences, scores)`: `sequences (batch, beam_width, max_length)` int32, best
    first, filled with `end_id` after the end token, and `scores (batch, beam_width)` float32; with
    `return_alignments`, `DecodedWithAlignments(..., alignments)`, `alignments (batch, beam_width,
    max_length, source_length)` (zero after the end).

    Example (a bigram model; greedy decoding would give [2, 2, 2], log-probability -2.75):
    >>> table = tf.math.log([[.1, .6, .3], [.5, .1, .4], [.35, .25, .4]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = beam_search(step_fn, {}, tf.constant([2]), end_id=0, beam_width=2,
    ...                                 max_length=3)
    >>> print(sequences.numpy().tolist(), scores.numpy().round(2))
    [[[0, 0, 0], [2, 2, 2]]] [[-1.05 -2.75]]
    """
    checks.check_positive_int("beam_width", beam_width)
    checks.check_number("length_penalty", length_penalty, 0, strict=False)
    checks.check_number("coverage_penalty", coverage_penalty, 0, strict=False)
    checks.check_choice("ranking", ranking, RANKINGS)
    if coverage_penalty:
        contract.check_attention(initial_state, "coverage_penalty")
    sampler = BeamSampler(beam_width, length_penalty, coverage_penalty, ranking)
    return sampler(step_fn, initial_state, start_ids, end_id, max_length, return_alignments, jit_compile,
                   prompt=prompt, prompt_mask=prompt_mask, prefill_fn=prefill_fn, stop_ids=stop_ids)


class BeamSampler(Sampler):
    """Keeps the `beam_width` best hypotheses per input at every step (see `beam_search`): its
    own loop, since it tracks several hypotheses per input.

    Example:
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> found = ksa.decoding.BeamSampler(beam_width=2)(step_fn, {}, [2], end_id=0, max_length=3)
    >>> found.sequences.shape  # (batch, beam_width, max_length), the best hypothesis first
    TensorShape([1, 2, 3])
    """

    name = "beam_search"

    def __init__(self, beam_width, length_penalty=0.0, coverage_penalty=0.0, ranking="gnmt"):
        self.beam_width, self.ranking = beam_width, ranking
        self.length_penalty, self.coverage_penalty = float(length_penalty), float(coverage_penalty)

    def rows_per_input(self):
        return self.beam_width

    def settings(self):
        return (self.beam_width, self.length_penalty, self.coverage_penalty, self.ranking)

    def loop(self, step_fn, prefill_fn, prompt, lengths, initial_state, seed, *, traced, end_id, max_length,
             return_alignments, stop_ids, prompted):
        """The loop of `Sampler.loop` over `beam_width` hypotheses per input: while a row is
        inside its prompt every hypothesis takes the prompt's token at no cost; then the best
        candidates of all hypotheses are kept."""
        beam_width, alpha, beta = self.beam_width, self.length_penalty, self.coverage_penalty
        track_attention = bool(beta) or return_alignments
        batch, prompt_length = tf.shape(prompt)[0], tf.shape(prompt)[1]
        total = prompt_length + max_length
        buffer = tf.concat([tf.where(tf.range(prompt_length)[None, :] < lengths[:, None], prompt, end_id),
                            tf.fill([batch, max_length], end_id)], axis=1)
        state, first = initial_state, 0
        if prefill_fn is not None:
            state = prefill_fn(prompt, initial_state)
            tf.nest.assert_same_structure(initial_state, state)
            first = tf.reduce_min(lengths) - 1
        zeros = tf.zeros([batch, beam_width])
        start = dict(
            step=tf.cast(first, tf.int32), state=tf.nest.map_structure(lambda x: tf.repeat(x, beam_width, axis=0), state),
            buffer=tf.tile(buffer[:, None], [1, beam_width, 1]),
            # Only the first hypothesis is live at the start, so the first step expands it alone.
            log_probs=tf.tile([[0.0] + [-float("inf")] * (beam_width - 1)], [batch, 1]),
            lengths=zeros, finished=tf.zeros_like(zeros, tf.bool), scores=zeros, ends=tf.tile(lengths[:, None],
                                                                                             [1, beam_width]),
            coverage=(), alignments=())
        if track_attention:
            source_length = tf.shape(initial_state[contract.ATTENTION])[1]
            start["coverage"] = tf.zeros([batch, beam_width, source_length])
            if return_alignments:
                start["alignments"] = tf.zeros([batch, beam_width, total, source_length])
        stops = tf.constant(stop_ids)

        def body(loop):
            t, finished = loop["step"], loop["finished"]
            tokens = tf.reshape(tf.gather(loop["buffer"], t, axis=2), [-1])
            logits, state = contract.call_step(step_fn, tokens, loop["state"], t, end_id)
            traced.vocabulary = logits.shape[-1]
            vocab = tf.shape(logits)[1]
            step_log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch, beam_width, vocab])
            # A finished hypothesis may only repeat end_id, at no cost; inside the prompt, every
            # hypothesis takes the prompt's token, at no cost either.
            forced = (t + 1 < lengths)[:, None] & tf.ones_like(finished)
            forced_token = tf.gather(loop["buffer"], t + 1, axis=2)  # (batch, beam)
            only = lambda token: tf.one_hot(token, vocab, on_value=0.0, off_value=-float("inf"))  # noqa: E731
            step_log_probs = tf.where(finished[..., None], only(end_id), step_log_probs)
            step_log_probs = tf.where(forced[..., None], only(forced_token), step_log_probs)
            candidates = loop["log_probs"][..., None] + step_log_probs  # (batch, beam, vocab)
            growing = tf.cast(~finished & ~forced, tf.float32)
            if self.ranking == "gnmt":  # every candidate counts its token, the end token too
                candidate_lengths = (loop["lengths"] + growing)[..., None]
            else:  # tensorflow-addons: not the end token chosen at this step
                not_end = tf.cast(tf.not_equal(tf.range(vocab), end_id), tf.float32)
                candidate_lengths = loop["lengths"][..., None] + growing[..., None] * not_end
            candidate_scores = candidates / _length_penalty(candidate_lengths, alpha)
            coverage = loop["coverage"]
            if track_attention:
                attention = tf.reshape(contract.attention_in(state), [batch, beam_width, -1])
                attention = tf.where((finished | forced)[..., None], 0.0, attention)
                coverage = coverage + attention
                if beta:
                    penalty = beta * _coverage_log(coverage)
                    if self.ranking == "tensorflow_addons":  # only hypotheses finished before this step
                        penalty = tf.where(finished, penalty, 0.0)
                    candidate_scores += penalty[..., None]
            scores, chosen = tf.math.top_k(tf.reshape(candidate_scores, [batch, -1]), beam_width)
            beam, new_tokens = chosen // vocab, chosen % vocab  # (batch, beam) each

            def reorder(x):
                return tf.gather(x, beam, batch_dims=1)

            generated = reorder(growing) > 0
            stopped = tf.reduce_any(tf.equal(new_tokens[..., None], stops), axis=-1)
            new = dict(loop, step=t + 1, scores=scores,
                       log_probs=tf.gather(tf.reshape(candidates, [batch, -1]), chosen, batch_dims=1),
                       lengths=reorder(loop["lengths"] + growing),
                       ends=tf.where(generated, t + 2, reorder(loop["ends"])),
                       finished=reorder(finished) | (generated & (stopped | (t + 2 >= lengths[:, None] + max_length))),
                       buffer=contract.write_at(reorder(loop["buffer"]), t + 1, new_tokens, axis=2))
            if track_attention:
                new["coverage"] = reorder(coverage)
                if return_alignments:
                    new["alignments"] = contract.write_at(reorder(loop["alignments"]), t + 1, reorder(attention),
                                                          axis=2)
            rows = tf.reshape(beam + beam_width * tf.range(batch)[:, None], [-1])
            # A leaf the step passed through unchanged (encoder outputs, projected keys, a cross-
            # attention cache) is the same for every hypothesis of an input: it needs no reordering.
            new["state"] = tf.nest.map_structure(lambda x, old: x if x is old else tf.gather(x, rows),
                                                 state, loop["state"])
            return (contract.keep_shapes(new, loop),)

        (done,) = tf.while_loop(lambda loop: (loop["step"] < total - 1) & ~tf.reduce_all(loop["finished"]), body,
                                (start,))
        if prompted:
            return contract.Generated(done["buffer"], done["scores"], done["ends"])
        if return_alignments:
            return contract.DecodedWithAlignments(done["buffer"][..., 1:], done["scores"], done["alignments"][:, :, 1:])
        return contract.Decoded(done["buffer"][..., 1:], done["scores"])


def _length_penalty(lengths, alpha):
    return ((5.0 + lengths) / 6.0) ** alpha if alpha else tf.ones_like(lengths)


def _coverage_log(coverage):
    """Σⱼ log(min(coverage_j, 1)) over the source positions that received any attention."""
    attended = coverage > 0
    log_coverage = tf.math.log(tf.where(attended, tf.minimum(coverage, 1.0), 1.0))
    return tf.reduce_sum(log_coverage, axis=-1)
