"""The attention policy: one small immutable object that says how attention runs, which the
kernels receive explicitly.

It holds every decision that depends on the machine rather than on the math: from how many
scores the blocked path runs, the tile shapes of each kind, the loop parallelism, whether the
kernels compile with XLA, and the memory budget under which training keeps the dense path
(faster forward+backward, at the price of T x S matrices). Defaults are chosen per device kind;
`python -m keras_seqattn.tune` measures this machine and writes a policy file that
`get_policy()` loads (see `load_policy`). Set one for everything with `set_policy`, or for a
block of code with `policy_scope`; pass one to `scaled_dot_product_attention(policy=...)`.

The figures behind the defaults live in `benchmarks/` (results with the CPU recorded), not here.
Pure Python: no backend.
"""

import contextlib
import dataclasses
import json
import os
import platform
import threading

COMPILE = ("auto", "always", "never")
CAUSAL_KINDS = ("online", "rows")
POLICY_FILE = os.path.join(os.path.expanduser("~"), ".keras_seqattn", "policy.json")


@dataclasses.dataclass(frozen=True)
class AttentionPolicy:
    """How attention runs.

    Attributes:
        blocked_min_scores: from this many scores per head (T·S, both known when traced), the
            blocked path (no T x S matrix) computes attention that needs no weights; below it,
            the dense path.
        training_budget: while training without causality (`training=True`), the dense path is
            kept while its forward+backward score matrices (about 3 · batch · heads · T · S · 4
            bytes) fit in this many bytes: it is faster than recomputing whole rows (causal tiles,
            which skip half the work, are faster than both). 0 sends training to the blocked path
            from `blocked_min_scores` on, as inference.
        row_scores: without causality, a query block spans whole rows (all S keys, one exact
            softmax) while `min_row_block` or more rows x S keys fit this many scores (the largest
            power of two of rows that does); beyond, online tiles.
        min_row_block: the fewest query rows of a whole-row block.
        causal_kind: the blocked path with causality: "online" (FlashAttention's tiles with a
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
        search_xla_rows: the searches' `jit_compile="auto"`: their loop compiles with XLA from
            this many rows (batch × beams) on; fewer run TensorFlow's own kernels (on a CPU, XLA's
            code for the matrix-vector products of one row is slower). With `compile="always"` or
            `"never"`, the searches follow it. 1: always XLA.
        device: the device kind the defaults were chosen for ("cpu", "gpu", "tpu"), or "tuned:<cpu>"
            for a tuned policy.

    Example (a policy is a frozen dataclass: change it with `dataclasses.replace`):
    >>> import dataclasses
    >>> policy = dataclasses.replace(ksa.ops.get_policy(), blocked_min_scores=1)
    >>> policy.blocked_min_scores
    1
    """

    blocked_min_scores: int = 1024 * 1024
    training_budget: int = 512 * 1024 * 1024
    row_scores: int = 1 << 20
    min_row_block: int = 64
    causal_kind: str = "online"
    causal_tiles: tuple = (256, 256)
    causal_rows: int = 256
    online_tiles: tuple = (1024, 1024)
    parallel_iterations: int = 2
    compile: str = "auto"
    search_xla_rows: int = 4
    device: str = "cpu"

    def __post_init__(self):
        for name in ("blocked_min_scores", "row_scores", "min_row_block", "causal_rows", "parallel_iterations",
                     "search_xla_rows"):
            _check_positive(name, getattr(self, name))
        if isinstance(self.training_budget, bool) or not isinstance(self.training_budget, int) \
                or self.training_budget < 0:
            raise ValueError(f"`training_budget` must be an integer >= 0 (bytes). "
                             f"Received: training_budget={self.training_budget!r}")
        for name in ("causal_tiles", "online_tiles"):
            tiles = getattr(self, name)
            if not isinstance(tiles, (tuple, list)) or len(tiles) != 2:
                raise ValueError(f"`{name}` must be (query_block, key_block). Received: {name}={tiles!r}")
            for value in tiles:
                _check_positive(name, value)
            object.__setattr__(self, name, tuple(tiles))
        if self.causal_kind not in CAUSAL_KINDS:
            raise ValueError(f"`causal_kind` must be one of {list(CAUSAL_KINDS)}. "
                             f"Received: causal_kind={self.causal_kind!r}")
        if self.compile not in COMPILE:
            raise ValueError(f"`compile` must be one of {list(COMPILE)}. Received: compile={self.compile!r}")

    @classmethod
    def for_device(cls, kind):
        """The defaults for a device kind: "cpu", "gpu" or "tpu"."""
        if kind not in ("cpu", "gpu", "tpu"):
            raise ValueError(f"`kind` must be 'cpu', 'gpu' or 'tpu'. Received: kind={kind!r}")
        if kind == "cpu":
            return cls()
        # On accelerators everything compiles with XLA, and memory is what the blocked path saves.
        return cls(training_budget=256 * 1024 * 1024, causal_kind="online", causal_tiles=(128, 128),
                   online_tiles=(128, 512), compile="always", search_xla_rows=1, device=kind)

    def replace(self, **changes):
        """A copy with `changes`."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"Unknown attention policy fields: {sorted(unknown)}. Received: {values!r}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


_state = threading.local()
_global = {"policy": None}


def cpu_model():
    """The CPU's model name (what a tuned policy is tuned for)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def load_policy(path=None):
    """The policy in `path` (default: $KERAS_SEQATTN_POLICY, else ~/.keras_seqattn/policy.json),
    or None when there is none, or when it was tuned on another CPU (a tuned policy records its
    CPU).

    Example (no file: None):
    >>> import os, tempfile
    >>> ksa.ops.load_policy(os.path.join(tempfile.mkdtemp(), "none.json")) is None
    True
    """
    path = path or os.environ.get("KERAS_SEQATTN_POLICY") or POLICY_FILE
    if not os.path.exists(path):
        return None
    with open(path) as f:
        saved = json.load(f)
    if saved.get("cpu") not in (None, cpu_model()):
        return None
    return AttentionPolicy.from_dict(saved["policy"])


def save_policy(policy, path=None):
    """Write `policy` (for this CPU) where `load_policy` finds it; return the path.

    Example:
    >>> import os, tempfile
    >>> path = ksa.ops.save_policy(ksa.ops.AttentionPolicy(causal_rows=128),
    ...                            os.path.join(tempfile.mkdtemp(), "policy.json"))
    >>> ksa.ops.load_policy(path).causal_rows
    128
    """
    path = path or os.environ.get("KERAS_SEQATTN_POLICY") or POLICY_FILE
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"cpu": cpu_model(), "policy": policy.to_dict()}, f, indent=1)
    return path


def default_policy():
    """A tuned policy for this CPU when one was saved, else the defaults of the device kind
    TensorFlow sees (CPU when TensorFlow is not installed)."""
    tuned = load_policy()
    if tuned is not None:
        return tuned
    try:
        import tensorflow as tf
    except ImportError:
        return AttentionPolicy()
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

    Example (every attention call inside the block takes the blocked path):
    >>> with ksa.ops.policy_scope(ksa.ops.AttentionPolicy(blocked_min_scores=1)):
    ...     ksa.ops.get_policy().blocked_min_scores
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
