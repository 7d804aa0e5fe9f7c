import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

from keras_seqattn import ops


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    ops.set_policy(None)


# The long tests, measured at 8 s or more each on a 2-core CPU: the examples' smoke runs, the
# property tests, worker processes, builds, and the shared harness (a fresh process per layer).
# `pytest -m "not slow"` leaves them out; the whole suite runs them all.
SLOW = (
    "tests/examples/",
    "tests/properties/",
    "tests/distributed/",
    "tests/docs/",
    "tests/package/test_release.py",
    "tests/package/test_backends.py",
    "::test_harness",
    "_harness",
    "test_forward_backward_never_holds_a_score_matrix",
    "test_a_server_compiles_once_per_power_of_two_bucket",
    "test_the_onednn_setting_is_read_and_timed_in_fresh_processes",
    "test_the_tuner_times_an_rnn_attention_step_with_and_without_xla",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if any(part in item.nodeid for part in SLOW):
            item.add_marker(pytest.mark.slow)
