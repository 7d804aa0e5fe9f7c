"""The XLA-compile wrapper that the kernels of the functional core run through.

Keras resolves `jit_compile="auto"` to False on CPU, and a layer called eagerly is never compiled,
so on the TensorFlow backend a kernel can compile itself: `kernel(*tensors, xla=True, **static)`
runs `fn` inside `tf.function(jit_compile=True)`; `xla=False` runs `fn`'s TensorFlow ops as they are,
in the caller's graph or eagerly. Which kernels compile is the attention policy's decision
(`keras_seqattn.ops.policy`); a caller's `jit_compile=True` function compiles every kernel with
XLA, as part of itself.

The function is traced once per combination of tensor dtypes, tensor ranks, which optional tensors
are present and the static (non-tensor) keyword arguments; never once per batch size or sequence
length, because the input signature leaves every dimension unknown (keras-team/keras#20369 is the
retracing this avoids). XLA still specialises the compiled program to the concrete shapes it
meets, as it must. On other backends `fn` runs as is.
"""

import functools

import keras


class _Kernel:
    def __init__(self, fn):
        self.fn = fn
        self.functions = {}
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, *tensors, xla=False, **static):
        if not xla or keras.backend.backend() != "tensorflow":
            return self.fn(*tensors, **static)
        import tensorflow as tf

        present = [tf.convert_to_tensor(t) for t in tensors if t is not None]
        slots = tuple(t is not None for t in tensors)
        key = (slots, tuple((t.dtype, t.shape.rank) for t in present), tuple(sorted(static.items())))
        function = self.functions.get(key)
        if function is None:
            function = self._compile(slots, present, static)
            self.functions[key] = function
        return function(*present)

    def _compile(self, slots, present, static):
        import tensorflow as tf

        signature = [tf.TensorSpec([None] * t.shape.rank, t.dtype) for t in present]
        # A partial per signature: TensorFlow's retracing warning counts traces per code object.
        run = functools.partial(_call_with_slots, self.fn, slots, static)
        return tf.function(run, input_signature=signature, jit_compile=True, autograph=False)

    def tracing_count(self):
        """How many times this kernel has been traced, over all its input kinds."""
        return sum(f.experimental_get_tracing_count() for f in self.functions.values())


def _call_with_slots(fn, slots, static, *present):
    """Call `fn` with the present tensors back in their slots and None in the others."""
    present = iter(present)
    return fn(*[next(present) if slot else None for slot in slots], **static)


def xla_kernel(fn):
    """Decorator: `fn(*tensors, **static)` callable as `kernel(*tensors, xla=..., **static)`, run
    XLA-compiled when `xla` is true (see the module docstring).

    Positional arguments are tensors or None; keyword arguments are static Python values that
    select the program (flags, rates, tile sizes), hashable, and part of the trace key.
    """
    return _Kernel(fn)
