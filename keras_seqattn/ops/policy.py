"""The attention policy: one small immutable object that says how attention runs, and the one
place where each call is planned (`AttentionPolicy.plan`).

It holds every decision that depends on the machine rather than on the math: from how many
scores the flash path runs, the tile shapes of each kind, the loop parallelism, whether the
kernels compile with XLA, and the memory budget under which training keeps the dense path
(faster forward+backward, at the price of T x S matrices). Defaults are chosen per device kind;
`python -m keras_seqattn.tune` measures this machine and writes a policy file that the first
`get_policy()` loads (`ops/tuning.py`). Set one for everything with `set_policy`, or for a block
of code with `policy_scope`; pass one to an op (`scaled_dot_product_attention(policy=...)`). The
ops resolve the policy once, at their entry, and hand its plan to the kernels: nothing below them
reads the global.

The figures behind the defaults live in `benchmarks/` (results with the CPU recorded), not here.
Pure Python: no backend.
"""

import contextlib
import dataclasses
import threading

from keras_seqattn import deprecation

COMPILE = ("auto", "always", "never")
CAUSAL_KINDS = ("online", "rows")
WHOLE_ROWS = None  # the key block of whole-row tiles
CAUSAL_ROWS = "causal_rows"  # the key block of causal rows


@dataclasses.dataclass(frozen=True)
class AttentionPlan:
    """How one attention call runs, as `AttentionPolicy.plan` decides it.

    Attributes:
        flash_attention: True for the flash path (no T x S matrix), False for the dense one.
        xla: whether the kernel compiles itself with XLA.
        blocks: the flash path's `(query_block, key_block)`; `key_block` is an int for online
            tiles, `WHOLE_ROWS` (None) for whole rows, `CAUSAL_ROWS` for causal rows. None on the
            dense path.
        parallel_iterations: tiles a TensorFlow loop may run at once outside XLA.

    Example (a causal call of 4096 queries and keys: online tiles of 256, compiled with XLA):
    >>> ksa.ops.AttentionPolicy().plan(4096, 4096, is_causal=True)
    AttentionPlan(flash_attention=True, xla=True, blocks=(256, 256), parallel_iterations=2)
    """

    flash_attention: bool = False
    xla: bool = False
    blocks: tuple = None
    parallel_iterations: int = 1


@dataclasses.dataclass(frozen=True)
class AttentionPolicy:
    """How attention runs.

    Attributes:
        flash_min_scores: from this many scores per head (T·S, both known when traced), the
            flash path (no T x S matrix) computes attention that needs no weights; below it,
            the dense path.
        training_budget: while training without causality (`training=True`), the dense path is
            kept while its forward+backward score matrices (about 3 · batch · heads · T · S · 4
            bytes) fit in this many bytes: it is faster than recomputing whole rows (causal tiles,
            which skip half the work, are faster than both). 0 sends training to the flash path
            from `flash_min_scores` on, as inference.
        row_scores: without causality, a query block spans whole rows (all S keys, one exact
            softmax) while `min_row_block` or more rows x S keys fit this many scores (the largest
            power of two of rows that does); beyond, online tiles.
        min_row_block: the fewest query rows of a whole-row block.
        causal_kind: the flash path with causality: "online" (FlashAttention's tiles with a
            running max, tiles above the diagonal skipped, XLA-compiled) or "rows" (each query
            block against the keys up to its diagonal with one exact softmax, TensorFlow's own
            kernels; XLA cannot compile it, so under a caller's `jit_compile=True` the online tiles
            run).
        causal_tiles: (query block, key block) of the online causal tiles.
        causal_rows: query rows per block of the "rows" causal kind.
        online_tiles: (query block, key block) of the online tiles without causality.
        parallel_iterations: tiles a TensorFlow loop may run at once outside XLA.
        compile: "auto" (on a CPU, XLA for the causal online tiles in float32 only, where it
            measured faster; TensorFlow's own kernels for the rest), "always" (every kernel; the GPU and
            TPU defaults) or "never". A caller's own `jit_compile=True` compiles the kernels anyway.
        search_xla_rows: deprecated: the searches decide their own compilation
            (`keras_seqattn.decoding`, `jit_compile=`). When set, their `jit_compile="auto"`
            compiles from this many rows on, for one more release.
        device: the device kind the defaults were chosen for ("cpu", "gpu", "tpu"), or "tuned:<cpu>"
            for a tuned policy.

    Example (a policy is a frozen dataclass: change it with `dataclasses.replace`):
    >>> import dataclasses
    >>> policy = dataclasses.replace(ksa.ops.get_policy(), flash_min_scores=1)
    >>> policy.plan(query_length=8, key_length=8).flash_attention
    True
    """

    flash_min_scores: int = 1024 * 1024
    training_budget: int = 512 * 1024 * 1024
    row_scores: int = 1 << 20
    min_row_block: int = 64
    causal_kind: str = "online"
    causal_tiles: tuple = (256, 256)
    causal_rows: int = 256
    online_tiles: tuple = (1024, 1024)
    parallel_iterations: int = 2
    compile: str = "auto"
    device: str = "cpu"
    search_xla_rows: int = None

    def __post_init__(self):
        for name in ("flash_min_scores", "row_scores", "min_row_block", "causal_rows", "parallel_iterations"):
            _check_positive(name, getattr(self, name))
        if self.search_xla_rows is not None:
            deprecation.warn(
                "`AttentionPolicy(search_xla_rows=...)`",
                "`jit_compile=` on the search (the searches decide their own compilation)",
            )
            _check_positive("search_xla_rows", self.search_xla_rows)
        if (
            isinstance(self.training_budget, bool)
            or not isinstance(self.training_budget, int)
            or self.training_budget < 0
        ):
            raise ValueError(
                f"`training_budget` must be an integer >= 0 (bytes). Received: training_budget={self.training_budget!r}"
            )
        for name in ("causal_tiles", "online_tiles"):
            tiles = getattr(self, name)
            if not isinstance(tiles, (tuple, list)) or len(tiles) != 2:
                raise ValueError(f"`{name}` must be (query_block, key_block). Received: {name}={tiles!r}")
            for value in tiles:
                _check_positive(name, value)
            object.__setattr__(self, name, tuple(tiles))
        if self.causal_kind not in CAUSAL_KINDS:
            raise ValueError(
                f"`causal_kind` must be one of {list(CAUSAL_KINDS)}. Received: causal_kind={self.causal_kind!r}"
            )
        if self.compile not in COMPILE:
            raise ValueError(f"`compile` must be one of {list(COMPILE)}. Received: compile={self.compile!r}")

    @classmethod
    def for_device(cls, kind):
        """The defaults for a device kind: "cpu", "gpu" or "tpu"."""
        if kind not in ("cpu", "gpu", "tpu"):
            raise ValueError(f"`kind` must be 'cpu', 'gpu' or 'tpu'. Received: kind={kind!r}")
        if kind == "cpu":
            return cls()
        # On accelerators everything compiles with XLA, and memory is what the flash path saves: a
        # choice that no GPU or TPU run has measured yet (benchmarks/accelerator_check.py will).
        return cls(
            training_budget=256 * 1024 * 1024,
            causal_kind="online",
            causal_tiles=(128, 128),
            online_tiles=(128, 512),
            compile="always",
            device=kind,
        )

    def replace(self, **changes):
        """Deprecated: `dataclasses.replace(policy, **changes)`."""
        deprecation.warn("`AttentionPolicy.replace(...)`", "`dataclasses.replace(policy, ...)`")
        return dataclasses.replace(self, **changes)

    @property
    def blocked_min_scores(self):
        """Deprecated: `flash_min_scores`."""
        deprecation.warn("`AttentionPolicy.blocked_min_scores`", "`flash_min_scores`")
        return self.flash_min_scores

    def plan(
        self,
        query_length=None,
        key_length=None,
        *,
        batch=None,
        heads=None,
        is_causal=False,
        window=None,
        banded=False,
        training=False,
        dtype="float32",
        flash_attention=None,
        weights_needed=False,
        backend="tensorflow",
    ):
        """The plan of one attention call: which path, which tiles, whether it compiles.

        `query_length`, `key_length`, `batch`, `heads`: the sizes known when traced (None:
        unknown). `window`: the sliding window, if any; `banded`: a bias, ALiBi or a query offset.
        `training`: whether gradients will be taken. `flash_attention`: the caller's choice (None:
        this policy's); `weights_needed`: the call returns or drops out attention weights, which
        only the dense path computes. `backend`: the Keras backend (the flash path is TensorFlow's).
        A call with no lengths (a scoring op, a position kernel) gets the dense plan.

        Example (from `flash_min_scores` scores on, the flash path, with whole rows):
        >>> policy = ksa.ops.AttentionPolicy(flash_min_scores=64 * 64)
        >>> policy.plan(32, 32).flash_attention, policy.plan(64, 64).blocks
        (False, (64, None))
        """
        is_causal = bool(is_causal)
        if not self._takes_flash(
            query_length, key_length, batch, heads, is_causal, training, flash_attention, weights_needed, backend
        ):
            return AttentionPlan(flash_attention=False, xla=self.compile == "always")
        blocks = self._blocks(query_length, key_length, is_causal, banded or window is not None)
        # "auto": XLA for the online tiles that skip work (causal or windowed) in float32 only;
        # XLA's CPU code for bfloat16 products is slower than oneDNN's.
        skipping = (is_causal or window is not None) and blocks[1] not in (WHOLE_ROWS, CAUSAL_ROWS)
        xla = self.compile == "always" or (self.compile == "auto" and skipping and str(dtype) == "float32")
        return AttentionPlan(flash_attention=True, xla=xla, blocks=blocks, parallel_iterations=self.parallel_iterations)

    def _takes_flash(self, q_len, k_len, batch, heads, is_causal, training, flash_attention, weights_needed, backend):
        if flash_attention is not None:
            return bool(flash_attention)
        if (
            backend != "tensorflow"
            or weights_needed
            or q_len is None
            or k_len is None
            or q_len * k_len < self.flash_min_scores
        ):
            return False
        if not training or is_causal or batch is None or heads is None:
            return True
        # Training without causality keeps the dense path while its forward+backward score
        # matrices (about three float32 copies) fit the budget (an unknown batch size counts as
        # over it): it does not recompute the weights. The causal tiles skip half the work and
        # win anyway.
        return 3 * 4 * batch * heads * q_len * k_len > self.training_budget

    def _blocks(self, q_len, k_len, is_causal, banded):
        """`(query_block, key_block)` of the flash path; a band (a window, a bias, ALiBi or a
        query offset) takes online tiles. A shorter (known) sequence gets the power of two that
        covers it, so that the tile sizes, part of the kernel's trace key, take few values."""
        if is_causal and not banded and self.causal_kind == "rows":
            return _fit_block(self.causal_rows, q_len), CAUSAL_ROWS
        if not is_causal and not banded and k_len is not None and self.min_row_block * k_len <= self.row_scores:
            return _fit_block(1 << ((self.row_scores // k_len).bit_length() - 1), q_len), WHOLE_ROWS
        tiles = self.causal_tiles if is_causal else self.online_tiles
        return _fit_block(tiles[0], q_len), _fit_block(tiles[1], k_len)

    def to_dict(self):
        values = dataclasses.asdict(self)
        if values["search_xla_rows"] is None:
            del values["search_xla_rows"]
        return values

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        if "blocked_min_scores" in values:  # written by the previous release
            values["flash_min_scores"] = values.pop("blocked_min_scores")
        values.pop("search_xla_rows", None)
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"Unknown attention policy fields: {sorted(unknown)}. Received: {values!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


AttentionPolicy.__init__ = deprecation.legacy_arguments(renamed={"blocked_min_scores": "flash_min_scores"})(
    AttentionPolicy.__init__
)


def _fit_block(block, length):
    if length is None or length >= block:
        return block
    return max(1, 1 << (length - 1).bit_length())


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


_state = threading.local()
_global = {"policy": None}


def default_policy():
    """A tuned policy for this CPU when one was saved, else the defaults of the device kind
    TensorFlow sees."""
    from keras_seqattn.ops.tuning import load_policy

    tuned = load_policy()
    if tuned is not None:
        return tuned
    import tensorflow as tf

    for kind in ("tpu", "gpu"):
        if tf.config.list_logical_devices(kind.upper()):
            return AttentionPolicy.for_device(kind)
    return AttentionPolicy()


def get_policy():
    """The policy in force: the innermost `policy_scope`, else `set_policy`'s, else the default.

    Example:
    >>> isinstance(ksa.ops.get_policy(), ksa.ops.AttentionPolicy)
    True
    """
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    if _global["policy"] is None:
        _global["policy"] = default_policy()
    return _global["policy"]


def set_policy(policy):
    """Use `policy` everywhere (None: back to the default).

    Example:
    >>> ksa.ops.set_policy(ksa.ops.AttentionPolicy(compile="never"))
    >>> ksa.ops.get_policy().compile
    'never'
    >>> ksa.ops.set_policy(None)
    """
    if policy is not None and not isinstance(policy, AttentionPolicy):
        raise ValueError(f"`policy` must be an AttentionPolicy or None. Received: policy={policy!r}")
    _global["policy"] = policy


@contextlib.contextmanager
def policy_scope(policy):
    """Use `policy` inside the `with` block (in this thread).

    Example (every attention call inside the block takes the flash path):
    >>> with ksa.ops.policy_scope(ksa.ops.AttentionPolicy(flash_min_scores=1)):
    ...     ksa.ops.get_policy().flash_min_scores
    1
    """
    if not isinstance(policy, AttentionPolicy):
        raise ValueError(f"`policy` must be an AttentionPolicy. Received: policy={policy!r}")
    stack = _state.__dict__.setdefault("stack", [])
    stack.append(policy)
    try:
        yield policy
    finally:
        stack.pop()
