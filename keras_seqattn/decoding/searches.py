"""One-line conveniences over the samplers, in the shape of the previous release's functions:
`greedy_search(...)` is `GreedySampler()(...)`. TensorFlow only."""

from keras_seqattn import deprecation
from keras_seqattn.decoding.beam_sampler import BeamSampler
from keras_seqattn.decoding.greedy_sampler import GreedySampler
from keras_seqattn.decoding.random_sampler import RandomSampler

_RENAMED = {"return_alignments": "return_attention_scores"}
_CALL = ("return_alignments", "jit_compile")


@deprecation.legacy_arguments(positional=("end_id", "max_length") + _CALL, renamed=_RENAMED)
def greedy_search(step_fn, initial_state, start_ids=None, **kwargs):
    """`GreedySampler()(step_fn, initial_state, start_ids, **kwargs)`: see `Sampler` for the
    arguments (all keyword-only after `start_ids`) and `Decoded` for the result.

    Example (a bigram model: 2 is followed by 1, then the end token 0):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = greedy_search(step_fn, {}, [2, 1], end_id=0, max_length=3)
    >>> sequences.numpy().tolist(), [round(float(score), 2) for score in scores]
    ([[1, 0, 0], [0, 0, 0]], [-0.8, -0.11])
    """
    return GreedySampler()(step_fn, initial_state, start_ids, **kwargs)


@deprecation.legacy_arguments(
    positional=("end_id", "max_length", "temperature", "top_k", "seed") + _CALL, renamed=_RENAMED
)
def sample_search(
    step_fn, initial_state, start_ids=None, *, temperature=1.0, top_k=None, top_p=None, repetition_penalty=1.0, **kwargs
):
    """`RandomSampler(temperature, top_k, top_p, repetition_penalty)(step_fn, initial_state,
    start_ids, **kwargs)`: see `RandomSampler` and `Sampler`.

    Example (the same seed, the same draws):
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> def draw(**kwargs):
    ...     return sample_search(step_fn, {}, [2, 2], end_id=0, max_length=4, **kwargs).sequences
    >>> bool(tf.reduce_all(draw(seed=7) == draw(seed=7)))
    True
    """
    sampler = RandomSampler(temperature, top_k, top_p, repetition_penalty)
    return sampler(step_fn, initial_state, start_ids, **kwargs)


@deprecation.legacy_arguments(
    positional=("end_id", "beam_width", "max_length", "length_penalty", "coverage_penalty") + _CALL + ("ranking",),
    renamed=_RENAMED,
)
def beam_search(
    step_fn,
    initial_state,
    start_ids=None,
    *,
    beam_width=5,
    length_penalty=0.0,
    coverage_penalty=0.0,
    ranking="gnmt",
    **kwargs,
):
    """`BeamSampler(beam_width, length_penalty, coverage_penalty, ranking)(step_fn, initial_state,
    start_ids, **kwargs)`: see `BeamSampler` and `Sampler`.

    Example (a bigram model; greedy decoding would give [2, 2, 2], log-probability -2.75):
    >>> table = tf.math.log([[.1, .6, .3], [.5, .1, .4], [.35, .25, .4]])
    >>> def step_fn(token_ids, state, step):
    ...     return tf.gather(table, token_ids), state
    >>> sequences, scores = beam_search(step_fn, {}, [2], end_id=0, beam_width=2, max_length=3)
    >>> print(sequences.numpy().tolist(), scores.numpy().round(2))
    [[[0, 0, 0], [2, 2, 2]]] [[-1.05 -2.75]]
    """
    sampler = BeamSampler(beam_width, length_penalty, coverage_penalty, ranking)
    return sampler(step_fn, initial_state, start_ids, **kwargs)
