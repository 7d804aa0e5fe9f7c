"""Progress for the examples' long steps (writing the data, decoding a test set, exporting):
`with step("what"):` prints what runs, then how long it took."""

import contextlib
import time


@contextlib.contextmanager
def step(message):
    print(f"{message} ...", flush=True)
    start = time.perf_counter()
    yield
    print(f"{message}: done in {time.perf_counter() - start:.1f} s", flush=True)
