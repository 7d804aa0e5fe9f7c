"""The attention policy: validation, scopes, files, the dispatch it drives, and the tuner."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import ops, tune
from keras_seqattn.ops import policy as policy_module


def test_defaults_per_device_kind_and_replace():
    cpu = ops.AttentionPolicy.for_device("cpu")
    assert cpu == ops.AttentionPolicy() and cpu.compile == "auto"
    assert ops.AttentionPolicy.for_device("gpu").compile == "always"
    assert cpu.replace(causal_rows=64).causal_rows == 64 and cpu.causal_rows == 256  # immutable
    with pytest.raises(Exception):
        cpu.causal_rows = 1


@pytest.mark.parametrize("kwargs, argument", [
    (dict(blocked_min_scores=0), "blocked_min_scores"),
    (dict(training_budget=-1), "training_budget"),
    (dict(causal_tiles=(256,)), "causal_tiles"),
    (dict(online_tiles=(0, 8)), "online_tiles"),
    (dict(causal_kind="diagonal"), "causal_kind"),
    (dict(compile=True), "compile"),
    (dict(parallel_iterations=1.5), "parallel_iterations"),
])
def test_bad_fields(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        ops.AttentionPolicy(**kwargs)
    with pytest.raises(ValueError, match="kind"):
        ops.AttentionPolicy.for_device("npu")


def test_scopes_nest_and_set_policy_is_global():
    base, inner, outer = ops.get_policy(), ops.AttentionPolicy(causal_rows=8), ops.AttentionPolicy(causal_rows=16)
    with ops.policy_scope(outer):
        assert ops.get_policy() is outer
        with ops.policy_scope(inner):
            assert ops.get_policy() is inner
        assert ops.get_policy() is outer
    assert ops.get_policy() == base
    ops.set_policy(inner)
    assert ops.get_policy() is inner
    ops.set_policy(None)
    assert ops.get_policy() == base
    with pytest.raises(ValueError, match="policy"):
        ops.set_policy({"causal_rows": 8})


def test_a_saved_policy_loads_on_its_cpu_only(tmp_path, monkeypatch):
    path = str(tmp_path / "policy.json")
    tuned = ops.AttentionPolicy(causal_kind="rows", causal_rows=128, device="tuned")
    assert ops.save_policy(tuned, path) == path
    assert ops.load_policy(path) == tuned
    monkeypatch.setenv("KERAS_SEQATTN_POLICY", path)
    assert policy_module.default_policy() == tuned  # what get_policy() starts from
    with open(path) as f:
        saved = json.load(f)
    saved["cpu"] = "another CPU"
    with open(path, "w") as f:
        json.dump(saved, f)
    assert ops.load_policy(path) is None
    assert ops.load_policy(str(tmp_path / "missing.json")) is None


def test_the_kernels_follow_the_policy_they_are_given():
    query, key, value = (tf.constant(np.random.default_rng(0).normal(size=(1, 40, 2, 8)), "float32")
                         for _ in range(3))
    dense = ops.scaled_dot_product_attention(query, key, value, is_causal=True, flash=False)
    for policy in (ops.AttentionPolicy(causal_tiles=(8, 16)), ops.AttentionPolicy(causal_kind="rows", causal_rows=8),
                   ops.AttentionPolicy(compile="never", causal_tiles=(4, 4))):
        out = ops.scaled_dot_product_attention(query, key, value, is_causal=True, flash=True, policy=policy)
        np.testing.assert_allclose(out, dense, atol=1e-5)


def test_the_tuner_keeps_the_fastest_setting(monkeypatch):
    monkeypatch.setattr(tune, "LENGTHS", (64,))
    fast = dict(causal_kind="rows", causal_rows=32)
    monkeypatch.setattr(tune, "CANDIDATES", {"causal": [dict(causal_kind="online"), fast]})
    # Stand-in timings: the tuner's choice, not the clock, is under test.
    monkeypatch.setattr(tune, "_time", lambda policy, causal, length, repeats: 1.0 if policy.causal_kind == "rows" else 2.0)
    tuned = tune.tune(repeats=1, log=lambda _: None)
    assert tuned.causal_kind == "rows" and tuned.causal_rows == 32 and tuned.device == "tuned"
    monkeypatch.setattr(tune, "_time", lambda policy, causal, length, repeats: 1.0)  # a tie keeps the default
    assert tune.tune(repeats=1, log=lambda _: None).causal_kind == "online"
