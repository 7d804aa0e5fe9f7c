"""Beam search over any step function, as one loop with static shapes. TensorFlow only."""

import keras
import tensorflow as tf

from keras_seqattn import checks
from keras_seqattn.decoding import contract
from keras_seqattn.decoding.sampler import Sampler

RANKINGS = ("gnmt", "tensorflow_addons")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class BeamSampler(Sampler):
    """Keeps the `beam_width` best hypotheses per input at every step and returns them best first:
    its own loop, since it tracks several hypotheses per input.

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
        beam_width: int, the number of hypotheses kept per input.
        length_penalty: α ≥ 0 (0: plain summed log-probabilities).
        coverage_penalty: β ≥ 0 (0: none); it needs a state with the attention weights.
        ranking: "gnmt" (Wu et al.'s score at every step) or "tensorflow_addons" (see above).

    Call arguments: as `Sampler`'s. `step_fn` runs on `batch * beam_width` rows (hypothesis k of
    input b in row b * beam_width + k); for the coverage penalty and `return_attention_scores`,
    its state is a dict whose `"attention"` entry holds this step's weights `(batch * beam_width,
    source_length)`. The initial state, with leading dimension `batch`, is tiled across the beam
    and reordered as hypotheses are chosen (leaves the step returns unchanged, the very same
    tensors, are left in place: they are equal for every hypothesis of an input). A finished
    hypothesis is never extended: its score and length stay as they are.

    Returns a `Decoded` result with `sequences (batch, beam_width, max_length)` (with a prompt,
    `(batch, beam_width, P + max_length)`, and |Y| counts the generated tokens), best first,
    `scores (batch, beam_width)` and, when asked, `attention_scores (batch, beam_width,
    max_length, source_length)`.

    Example:
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> found = ksa.decoding.BeamSampler(beam_width=2)(step_fn, {}, [2], end_id=0, max_length=3)
    >>> found.sequences.shape  # (batch, beam_width, max_length), the best hypothesis first
    TensorShape([1, 2, 3])
    """

    def __init__(self, beam_width=5, length_penalty=0.0, coverage_penalty=0.0, ranking="gnmt"):
        checks.check_positive_int("beam_width", beam_width)
        checks.check_number("length_penalty", length_penalty, 0, strict=False)
        checks.check_number("coverage_penalty", coverage_penalty, 0, strict=False)
        checks.check_choice("ranking", ranking, RANKINGS)
        self.beam_width, self.ranking = beam_width, ranking
        self.length_penalty, self.coverage_penalty = float(length_penalty), float(coverage_penalty)

    def rows_per_input(self):
        return self.beam_width

    def check_state(self, initial_state, return_attention_scores):
        super().check_state(initial_state, return_attention_scores)
        if self.coverage_penalty:
            contract.check_attention(initial_state, "coverage_penalty")

    def get_config(self):
        return dict(
            beam_width=self.beam_width,
            length_penalty=self.length_penalty,
            coverage_penalty=self.coverage_penalty,
            ranking=self.ranking,
        )

    def loop(
        self,
        step_fn,
        prefill_fn,
        prompt,
        lengths,
        initial_state,
        seed,
        *,
        traced,
        end_id,
        max_length,
        return_attention_scores,
        stop_ids,
    ):
        """The loop of `Sampler.loop` over `beam_width` hypotheses per input: while a row is
        inside its prompt every hypothesis takes the prompt's token at no cost; then the best
        candidates of all hypotheses are kept."""
        beam_width, alpha, beta = self.beam_width, self.length_penalty, self.coverage_penalty
        track_attention = bool(beta) or return_attention_scores
        buffer, state, first = self.begin(prefill_fn, prompt, lengths, initial_state, end_id, max_length)
        batch, total = tf.shape(buffer)[0], tf.shape(buffer)[1]
        zeros = tf.zeros([batch, beam_width])
        start = dict(
            step=first,
            state=tf.nest.map_structure(lambda x: tf.repeat(x, beam_width, axis=0), state),
            buffer=tf.tile(buffer[:, None], [1, beam_width, 1]),
            # Only the first hypothesis is live at the start, so the first step expands it alone.
            log_probs=tf.tile([[0.0] + [-float("inf")] * (beam_width - 1)], [batch, 1]),
            lengths=zeros,
            finished=tf.zeros_like(zeros, tf.bool),
            scores=zeros,
            ends=tf.tile(lengths[:, None], [1, beam_width]),
            coverage=(),
            attention=(),
        )
        if track_attention:
            source_length = tf.shape(initial_state[contract.ATTENTION])[1]
            start["coverage"] = tf.zeros([batch, beam_width, source_length])
            if return_attention_scores:
                start["attention"] = tf.zeros([batch, beam_width, total, source_length])
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
            only = lambda token: tf.one_hot(token, vocab, on_value=0.0, off_value=-float("inf"))
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
            new = dict(
                loop,
                step=t + 1,
                scores=scores,
                log_probs=tf.gather(tf.reshape(candidates, [batch, -1]), chosen, batch_dims=1),
                lengths=reorder(loop["lengths"] + growing),
                ends=tf.where(generated, t + 2, reorder(loop["ends"])),
                finished=reorder(finished) | (generated & (stopped | (t + 2 >= lengths[:, None] + max_length))),
                buffer=contract.write_at(reorder(loop["buffer"]), t + 1, new_tokens, axis=2),
            )
            if track_attention:
                new["coverage"] = reorder(coverage)
                if return_attention_scores:
                    new["attention"] = contract.write_at(reorder(loop["attention"]), t + 1, reorder(attention), axis=2)
            rows = tf.reshape(beam + beam_width * tf.range(batch)[:, None], [-1])
            # A leaf the step passed through unchanged (encoder outputs, projected keys, a cross-
            # attention cache) is the same for every hypothesis of an input: it needs no reordering.
            new["state"] = tf.nest.map_structure(
                lambda x, old: x if x is old else tf.gather(x, rows), state, loop["state"]
            )
            return new

        return self.run(body, start)


def _length_penalty(lengths, alpha):
    return ((5.0 + lengths) / 6.0) ** alpha if alpha else tf.ones_like(lengths)


def _coverage_log(coverage):
    """Σⱼ log(min(coverage_j, 1)) over the source positions that received any attention."""
    attended = coverage > 0
    log_coverage = tf.math.log(tf.where(attended, tf.minimum(coverage, 1.0), 1.0))
    return tf.reduce_sum(log_coverage, axis=-1)
