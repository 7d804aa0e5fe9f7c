"""The decoding strategy base: one loop over the positions that every sampler shares (its start
and end written once), the searches' compilation, and the compiled-function cache. TensorFlow only.
"""

import functools
import types
import weakref

import numpy as np
import tensorflow as tf

from keras_seqattn import checks, deprecation
from keras_seqattn.decoding import contract
from keras_seqattn.decoding.results import Decoded

# On a CPU, XLA's code for the matrix-vector products of one row is slower than TensorFlow's own
# kernels: a search's loop compiles from this many rows (batch x beams) on, and always on
# accelerators (benchmarks/README.md, "Searches").
CPU_XLA_MIN_ROWS = 4

# step function's owner (a model, for a bound method; else the function itself) -> {key: search}:
# entries live while the owner does, and the compiled searches hold it only weakly.
_COMPILED = weakref.WeakKeyDictionary()

_LEGACY_CALL = ("end_id", "max_length", "return_alignments", "jit_compile")


class Sampler:
    """A decoding strategy (as keras-hub's samplers): calling it runs one loop over a step function
    and `next_tokens` chooses each step's tokens. Its constructor takes and checks the strategy's
    settings; `get_config` returns them, and `keras_seqattn.decoding.get` builds one from a name or
    a config.

    Call arguments (every one after `start_ids` is keyword-only):
        step_fn: `step_fn(token_ids (rows,), state, step) -> (logits (rows, vocabulary), new_state)`;
            see `keras_seqattn.decoding.contract` for the contract.
        initial_state: nested structure of tensors, each with leading dimension `batch`.
        start_ids: `(batch,)` int (a tensor, a NumPy array, a list or a tuple), the first input
            tokens; None with a `prompt`.
        end_id: int, the token that ends a sequence.
        max_length: int, the number of tokens generated at most.
        return_attention_scores: also return the `"attention"` entry of the state at every step.
        jit_compile: True or False: whether the loop compiles with XLA; "auto" (the default): on
            a CPU from 4 rows (batch × beams) on, since XLA's code for one row's matrix-vector
            products is slower than TensorFlow's kernels; on GPUs and TPUs always.
        seed: int >= 0 for reproducible draws (random sampling), or None for fresh ones.
        prompt: instead of `start_ids`, a prompt to continue: `(batch, P)` ids with a
            `prompt_mask` (True = a token; left, right or any padding) or without one, or a
            `tf.RaggedTensor` of rows of different lengths. Each row continues from its own end;
            `step` is then the position of the token fed (the cache index of a decoder stack).
        prompt_mask: the prompt's mask, `(batch, P)` boolean.
        prefill_fn: `prefill_fn(prompt_ids (batch, P), state) -> state`: the prompt through the
            model in one call (filling the caches), before the loop; without it the loop feeds
            the prompt one token at a time. Both give the same result.
        stop_ids: more tokens that end a sequence besides `end_id` (after which it holds `end_id`).

    Returns a `Decoded` result (see its docstring).

    A search is traced once per step function, settings and input signature, eagerly too; the
    traced function is kept while the step function's owner lives and holds it only weakly, so it
    never keeps a model alive. Subclasses set `next_tokens` (and `get_config` for their
    settings), or replace `loop` altogether (beam search).

    Example (a strategy that always takes the second likeliest token):
    >>> class SecondBest(ksa.decoding.Sampler):
    ...     def next_tokens(self, logits, step, seed, history, seen):
    ...         return tf.math.top_k(logits, 2).indices[:, 1]
    >>> table = tf.math.log([[.1, .6, .3], [.9, .05, .05], [.2, .5, .3]])
    >>> found = SecondBest()(lambda ids, state, step: (tf.gather(table, ids), state), {}, [1], end_id=0,
    ...                      max_length=3)
    >>> found.sequences.numpy().tolist()
    [[1, 1, 1]]
    """

    def next_tokens(self, logits, step, seed, history, seen):
        """The tokens `(rows,)` int32 chosen from `logits` `(rows, vocabulary)` at `step`;
        `history` `(rows, length)` holds the tokens so far where `seen` (same shape) is True."""
        raise NotImplementedError

    def rows_per_input(self):
        """The rows the step function runs per input (beam search: one per hypothesis)."""
        return 1

    def check_state(self, initial_state, return_attention_scores):
        """Refuse a state that lacks what the settings need (the attention weights when asked)."""
        if return_attention_scores:
            contract.check_attention(initial_state, "return_attention_scores")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __call__(
        self,
        step_fn,
        initial_state,
        start_ids=None,
        *,
        end_id,
        max_length,
        return_attention_scores=False,
        jit_compile="auto",
        seed=None,
        prompt=None,
        prompt_mask=None,
        prefill_fn=None,
        stop_ids=None,
    ):
        prompted = prompt is not None
        if prompted:
            if start_ids is not None:
                raise ValueError("Give `start_ids` or a `prompt`, not both. Received: start_ids and prompt")
            if return_attention_scores:
                raise ValueError(
                    "A prompted search returns no attention scores. Received: return_attention_scores=True"
                )
            prompt, lengths = contract.pack_prompt(prompt, prompt_mask)
            contract.check_search_args(type(self).__name__, tf.zeros([1], tf.int32), end_id, max_length)
        else:
            if prefill_fn is not None:
                raise ValueError("`prefill_fn` prefills a `prompt`. Received: prompt=None")
            start_ids = contract.check_search_args(type(self).__name__, start_ids, end_id, max_length)
            prompt, lengths = start_ids[:, None], tf.ones_like(start_ids)
        self.check_state(initial_state, return_attention_scores)
        stop_ids = contract.check_stop_ids(stop_ids, end_id)
        options = dict(
            end_id=end_id,
            max_length=max_length,
            return_attention_scores=bool(return_attention_scores),
            stop_ids=stop_ids,
        )
        batch = prompt.shape[0]  # None when only known at run time
        rows = None if batch is None else batch * self.rows_per_input()
        search, traced = self._compiled(
            step_fn, prefill_fn, tuple(sorted(options.items())), compiles(jit_compile, rows)
        )
        inputs = (prompt, lengths, initial_state, check_seed(seed))
        search.get_concrete_function(*inputs)  # traces unless already traced: the vocabulary is known
        if traced.vocabulary is not None and tf.executing_eagerly():
            ids = prompt.numpy()[np.arange(prompt.shape[1])[None, :] < lengths.numpy()[:, None]]
            if ids.size and (ids.min() < 0 or ids.max() >= traced.vocabulary):
                name = "prompt" if prompted else "start_ids"
                raise ValueError(
                    f"`{name}` must be tokens of the step function's vocabulary of "
                    f"{traced.vocabulary}. Received: {name} ids from {ids.min()} to {ids.max()}"
                )
        done = search(*inputs)
        if prompted:
            return Decoded(done["buffer"], done["scores"], lengths=done["ends"])
        attention = done["attention"][..., 1:, :] if return_attention_scores else None
        return Decoded(done["buffer"][..., 1:], done["scores"], attention_scores=attention)

    def _compiled(self, step_fn, prefill_fn, options, jit_compile):
        owner = getattr(step_fn, "__self__", step_fn)
        function = getattr(step_fn, "__func__", step_fn)
        prefill = getattr(prefill_fn, "__func__", prefill_fn)
        settings = tuple(sorted(self.get_config().items()))
        key = (type(self), settings, function, prefill, options, jit_compile)
        try:
            searches = _COMPILED.setdefault(owner, {})
        except TypeError:  # an owner that takes no weak reference: compile for this call only
            searches = {}
        if key not in searches:
            searches[key] = self._compile(step_fn, prefill_fn, dict(options), jit_compile)
        return searches[key]

    def _compile(self, step_fn, prefill_fn, options, jit_compile):
        traced = types.SimpleNamespace(vocabulary=None)  # what the trace saw of the step function
        step, prefill = _weakly(step_fn), None if prefill_fn is None else _weakly(prefill_fn)

        def search(prompt, lengths, initial_state, seed):
            return self.loop(step, prefill, prompt, lengths, initial_state, seed, traced=traced, **options)

        return tf.function(search, jit_compile=jit_compile, autograph=False, reduce_retracing=True), traced

    @staticmethod
    def begin(prefill_fn, prompt, lengths, initial_state, end_id, max_length):
        """What every loop starts from: the token buffer `(batch, P + max_length)` (each row's
        prompt, then `end_id`), the state (prefilled through `prefill_fn` when given) and the first
        position to feed (the last one every row's prompt shares, when prefilled)."""
        batch, prompt_length = tf.shape(prompt)[0], tf.shape(prompt)[1]
        buffer = tf.concat(
            [
                tf.where(tf.range(prompt_length)[None, :] < lengths[:, None], prompt, end_id),
                tf.fill([batch, max_length], end_id),
            ],
            axis=1,
        )
        state, first = initial_state, 0
        if prefill_fn is not None:  # the prompt in one call; the loop redoes its last shared position
            state = prefill_fn(prompt, initial_state)
            tf.nest.assert_same_structure(initial_state, state)
            first = tf.reduce_min(lengths) - 1
        return buffer, state, tf.cast(first, tf.int32)

    @staticmethod
    def run(body, start):
        """Run `body` from `start` until the buffer is full or every row has finished; return what
        the result is made of (not the state: a compiled search would copy the caches out)."""
        total = tf.shape(start["buffer"])[-1]
        (done,) = tf.while_loop(
            lambda loop: (loop["step"] < total - 1) & ~tf.reduce_all(loop["finished"]),
            lambda loop: (contract.keep_shapes(body(loop), loop),),
            (start,),
        )
        return {name: done[name] for name in ("buffer", "scores", "ends", "attention")}

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
        """One loop over the positions: the token at position t goes in, position t + 1's comes
        out: the prompt's own token while t + 1 is inside the row's prompt, else the next token
        (until a stop token, or `max_length` new tokens). A seq2seq search is the prompt of one
        start token."""
        buffer, state, first = self.begin(prefill_fn, prompt, lengths, initial_state, end_id, max_length)
        batch, total = tf.shape(buffer)[0], tf.shape(buffer)[1]
        attention = ()
        if return_attention_scores:
            attention = tf.zeros([batch, total, tf.shape(initial_state[contract.ATTENTION])[1]])

        def body(loop):
            t = loop["step"]
            token = tf.gather(loop["buffer"], t, axis=1)
            logits, state = contract.call_step(step_fn, token, loop["state"], t, end_id)
            traced.vocabulary = logits.shape[-1]
            log_probs = tf.nn.log_softmax(logits)
            seen = tf.range(total)[None, :] <= t
            chosen = self.next_tokens(logits, t, seed, loop["buffer"], tf.broadcast_to(seen, tf.shape(loop["buffer"])))
            forced = t + 1 < lengths
            finished = loop["finished"]
            new_token = tf.where(forced, tf.gather(loop["buffer"], t + 1, axis=1), tf.where(finished, end_id, chosen))
            generating = ~forced & ~finished
            scores = loop["scores"] + tf.where(generating, tf.gather(log_probs, new_token, batch_dims=1), 0.0)
            stopped = tf.reduce_any(tf.equal(new_token[:, None], tf.constant(stop_ids)[None, :]), axis=1)
            new = dict(
                loop,
                step=t + 1,
                state=state,
                scores=scores,
                buffer=contract.write_at(loop["buffer"], t + 1, new_token, axis=1),
                ends=tf.where(generating, t + 2, loop["ends"]),
                finished=finished | (generating & (stopped | (t + 2 >= lengths + max_length))),
            )
            if return_attention_scores:
                weights = tf.where(generating[:, None], contract.attention_in(state), 0.0)
                new["attention"] = contract.write_at(loop["attention"], t + 1, weights, axis=1)
            return new

        return self.run(
            body,
            dict(
                step=first,
                buffer=buffer,
                state=state,
                finished=tf.zeros([batch], tf.bool),
                scores=tf.zeros([batch]),
                ends=lengths,
                attention=attention,
            ),
        )


Sampler.__call__ = deprecation.legacy_arguments(
    positional=_LEGACY_CALL, renamed={"return_alignments": "return_attention_scores"}
)(Sampler.__call__)


def _weakly(function):
    """`function` called through a weak reference to its owner (a bound method's object) or to
    itself: a compiled search that holds it keeps nothing alive."""
    if hasattr(function, "__self__"):
        method, owner = function.__func__, weakref.ref(function.__self__)
        return lambda *args: method(owner(), *args)
    reference = weakref.ref(function)
    return lambda *args: reference()(*args)


@functools.lru_cache(maxsize=1)
def _on_accelerator():
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def compiles(jit_compile, rows):
    """Whether a search of `rows` rows (None: unknown until run) compiles with XLA: as `jit_compile`
    says, or for "auto" from `CPU_XLA_MIN_ROWS` rows on a CPU and always on accelerators."""
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
    if jit_compile != "auto":
        return jit_compile
    if _on_accelerator():
        return True
    from keras_seqattn.ops.policy import get_policy

    min_rows = get_policy().search_xla_rows or CPU_XLA_MIN_ROWS  # the deprecated policy field, while it lasts
    return rows is None or rows >= min_rows


def check_seed(seed):
    """`seed` (an int >= 0 or None) as the `[seed, 0]` int64 key of stateless draws (a fresh one
    for None)."""
    checks.check_non_negative_int("seed", seed, allow_none=True)
    if seed is None:
        return tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
    return tf.constant([seed, 0], tf.int64)
