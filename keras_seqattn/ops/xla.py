"""The XLA-compile wrapper that every kernel of the functional core runs through.

Keras resolves `jit_compile="auto"` to False on CPU, and a layer called eagerly is never compiled,
so on the TensorFlow backend each kernel compiles itself: `xla_kernel(fn)` returns a callable that
runs `fn` inside `tf.function(jit_compile=True)` when a GPU or TPU is visible. On a CPU-only host
it runs `fn`'s TensorFlow ops as they are, in the caller's graph or eagerly, unless the kernel is
declared with `on_cpu=True` (the causal blocked attention, which XLA runs faster there): for the
other attention kernels on this CPU, TensorFlow's own kernels were measured faster than XLA's code
(compare the `ours` and `ours_xla` columns of benchmarks/results/attention_core.md), and a nested
graph function with unknown dimensions doubled the backward time. A caller's `jit_compile=True`
function compiles every kernel with XLA, as part of itself.

The function is traced once per combination of tensor dtypes, tensor ranks, which optional tensors
are present and the static (non-tensor) keyword arguments; never once per batch size or sequence
length, because the input signature leaves every dimension unknown (keras-team/keras#20369 is the
retracing this avoids). XLA still specialises the compiled program to the concrete shapes it
meets, as it must. On other backends `fn` runs as is.
"""

import functools

import keras


class _Kernel:
    def __init__(self, fn, on_cpu):
        self.fn, self.on_cpu = fn, on_cpu
        self.functions = {}
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, *tensors, **static):
        if keras.backend.backend() != "tensorflow" or not (self.on_cpu or accelerated()):
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


@functools.cache
def accelerated():
    """Whether TensorFlow sees a GPU or TPU, where the kernels compile with XLA."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _call_with_slots(fn, slots, static, *present):
    """Call `fn` with the present tensors back in their slots and None in the others."""
    present = iter(present)
    return fn(*[next(present) if slot else None for slot in slots], **static)


def xla_kernel(fn, on_cpu=False):
    """Decorator: run `fn(*tensors, **static)` XLA-compiled (see the module docstring); on a
    CPU-only host only with `on_cpu=True`.

    Positional arguments are tensors or None; keyword arguments are static Python values that
    select the program (flags, rates), hashable, and part of the trace key.
    """
    return _Kernel(fn, on_cpu)
