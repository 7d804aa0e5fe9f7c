"""The search loop that greedy search and random sampling share, and the compiled-function cache
of every search. TensorFlow only."""

import types
import weakref

import tensorflow as tf

from keras_seqattn.decoding import contract
from keras_seqattn.ops import checks

# step function's owner (a model, for a bound method; else the function itself) -> {key: search}:
# entries live while the owner does, and the compiled searches hold it only weakly.
_COMPILED = weakref.WeakKeyDictionary()


class Sampler:
    """A decoding strategy (as keras-hub's samplers): `__call__` runs one loop over a step
    function, XLA-compiled unless `jit_compile=False`, and `next_tokens` chooses each step's tokens.
    Subclasses set `name`, `settings()` (the static values that select the program) and
    `next_tokens`, or replace `loop` altogether (beam search).

    A search is traced once per step function, settings and input signature, eagerly too; the
    traced function is kept while the step function's owner lives and holds it only weakly, so
    it never keeps a model alive.
    """

    name = "search"

    def settings(self):
        """The hashable values that select the compiled program."""
        return ()

    def next_tokens(self, log_probs, step, seed):
        """The tokens `(rows,)` int32 chosen from `log_probs` `(rows, vocabulary)` at `step`."""
        raise NotImplementedError

    def __call__(self, step_fn, initial_state, start_ids, end_id, max_length, return_alignments=False,
                 jit_compile=True, seed=None):
        start_ids = contract.check_search_args(self.name, start_ids, end_id, max_length)
        if return_alignments:
            contract.check_attention(initial_state, "return_alignments")
        options = dict(end_id=end_id, max_length=max_length, return_alignments=bool(return_alignments))
        search, traced = self._compiled(step_fn, tuple(sorted(options.items())), bool(jit_compile))
        inputs = (start_ids, initial_state, seed)
        search.get_concrete_function(*inputs)  # traces unless already traced: the vocabulary is known
        if traced.vocabulary is not None and tf.executing_eagerly():
            ids = start_ids.numpy()
            if ids.size and (ids.min() < 0 or ids.max() >= traced.vocabulary):
                raise ValueError(f"`start_ids` must be tokens of the step function's vocabulary of "
                                 f"{traced.vocabulary}. Received: start_ids={ids.tolist()}")
        return search(*inputs)

    def _compiled(self, step_fn, options, jit_compile):
        owner = getattr(step_fn, "__self__", step_fn)
        function = getattr(step_fn, "__func__", step_fn)
        key = (type(self), self.settings(), function, options, jit_compile)
        try:
            searches = _COMPILED.setdefault(owner, {})
        except TypeError:  # an owner that takes no weak reference: compile for this call only
            searches = {}
        if key not in searches:
            searches[key] = self._compile(step_fn, dict(options), jit_compile)
        return searches[key]

    def _compile(self, step_fn, options, jit_compile):
        traced = types.SimpleNamespace(vocabulary=None)  # what the trace saw of the step function
        if hasattr(step_fn, "__self__"):
            method, owner = step_fn.__func__, weakref.ref(step_fn.__self__)
            step = lambda *args: method(owner(), *args)  # noqa: E731  (no strong reference kept)
        else:
            function = weakref.ref(step_fn)
            step = lambda *args: function()(*args)  # noqa: E731

        def search(start_ids, initial_state, seed):
            return self.loop(step, start_ids, initial_state, seed, traced=traced, **options)

        return tf.function(search, jit_compile=jit_compile, autograph=False, reduce_retracing=True), traced

    def loop(self, step_fn, start_ids, initial_state, seed, *, traced, end_id, max_length, return_alignments):
        """One token per input at each step until every input has ended or `max_length` tokens."""
        batch = tf.shape(start_ids)[0]
        alignments = ()
        if return_alignments:
            alignments = tf.zeros([batch, max_length, tf.shape(initial_state[contract.ATTENTION])[1]])

        def body(loop):
            log_probs, state = contract.call_step(step_fn, loop["tokens"], loop["state"], loop["step"], end_id)
            traced.vocabulary = log_probs.shape[-1]
            finished = loop["finished"]
            tokens = tf.where(finished, end_id, self.next_tokens(log_probs, loop["step"], seed))
            scores = loop["scores"] + tf.where(finished, 0.0, tf.gather(log_probs, tokens, batch_dims=1))
            new = dict(loop, step=loop["step"] + 1, tokens=tokens, state=state, scores=scores,
                       finished=finished | tf.equal(tokens, end_id),
                       sequences=contract.write_at(loop["sequences"], loop["step"], tokens, axis=1))
            if return_alignments:
                attention = tf.where(finished[:, None], 0.0, contract.attention_in(state))
                new["alignments"] = contract.write_at(loop["alignments"], loop["step"], attention, axis=1)
            return (contract.keep_shapes(new, loop),)

        start = dict(step=tf.constant(0), tokens=start_ids, state=initial_state, finished=tf.zeros([batch], tf.bool),
                     sequences=tf.fill([batch, max_length], end_id), scores=tf.zeros([batch]), alignments=alignments)
        (done,) = tf.while_loop(lambda loop: (loop["step"] < max_length) & ~tf.reduce_all(loop["finished"]), body,
                                (start,))
        if return_alignments:
            return contract.DecodedWithAlignments(done["sequences"], done["scores"], done["alignments"])
        return contract.Decoded(done["sequences"], done["scores"])


def check_seed(seed):
    """`seed` (an int >= 0 or None) as the `[seed, 0]` int64 key of stateless draws (a fresh one
    for None)."""
    checks.check_non_negative_int("seed", seed, allow_none=True)
    if seed is None:
        return tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
    return tf.constant([seed, 0], tf.int64)
