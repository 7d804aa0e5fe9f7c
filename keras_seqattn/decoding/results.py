"""What every search returns. TensorFlow only (the searches are TensorFlow loops)."""

import collections

from keras_seqattn import deprecation

OPTIONAL = ("lengths", "attention_scores")


class Decoded:
    """A search's result: one type for every sampler, with optional fields.

    Attributes:
        sequences: the tokens, int32: `(batch, max_length)` (beam search: `(batch, beam_width,
            max_length)`, best first), filled with `end_id` after the end; with a prompt, each
            row's prompt followed by what was generated (`(batch, P + max_length)`).
        scores: the summed log-probabilities of the generated tokens up to and including the
            stop token, `(batch,)` (beam search: its ranking score, `(batch, beam_width)`).
        lengths: with a prompt, the prompt and generated tokens of each row (the stop token
            included); else None.
        attention_scores: with `return_attention_scores=True`, the attention weights of every
            generated token `(..., max_length, source_length)` (zero after the end); else None.

    It is a named tuple of `sequences`, `scores` and the optional fields that are set, in the
    order above (`sequences, scores = greedy_search(...)`), so that it passes through
    `tf.function`, `tf.nest` and SavedModels as the previous release's results did.

    Example:
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> step_fn = lambda ids, state, step: (tf.gather(table, ids), state)
    >>> found = ksa.decoding.GreedySampler()(step_fn, {}, [2], end_id=0, max_length=3)
    >>> sequences, scores = found
    >>> sequences.numpy().tolist(), found.lengths is None, isinstance(found, ksa.decoding.Decoded)
    ([[1, 0, 0]], True, True)
    """

    __slots__ = ()
    lengths = None
    attention_scores = None

    def __new__(cls, sequences, scores, lengths=None, attention_scores=None):  # the variant with these fields
        present = tuple(name for name, value in zip(OPTIONAL, (lengths, attention_scores)) if value is not None)
        values = {"lengths": lengths, "attention_scores": attention_scores}
        return _VARIANTS[present](sequences, scores, *(values[name] for name in present))

    @property
    def alignments(self):
        """Deprecated: `attention_scores`."""
        deprecation.warn("`Decoded.alignments`", "`Decoded.attention_scores`")
        return self.attention_scores


def _variant(optional):
    fields = collections.namedtuple("Decoded", ("sequences", "scores", *optional))
    return type("Decoded", (fields, Decoded), {"__slots__": (), "__doc__": Decoded.__doc__})


_VARIANTS = {optional: _variant(optional) for optional in ((), ("lengths",), ("attention_scores",), OPTIONAL)}
