"""The attention policy: validation, scopes, files, the plan of each call and the kernels that follow
it, and the tuner."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import ops
from keras_seqattn.ops import attention, positions, rnn_attention, tuning
from keras_seqattn.ops import policy as policy_module


def test_defaults_per_device_kind_and_dataclasses_replace():
    cpu = ops.AttentionPolicy.for_device("cpu")
    assert cpu == ops.AttentionPolicy() and cpu.compile == "auto"
    assert ops.AttentionPolicy.for_device("gpu").compile == "always"
    assert dataclasses.replace(cpu, causal_rows=64).causal_rows == 64 and cpu.causal_rows == 256  # immutable
    with pytest.raises(dataclasses.FrozenInstanceError):
        cpu.causal_rows = 1


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(flash_min_scores=0), "flash_min_scores"),
        (dict(training_budget=-1), "training_budget"),
        (dict(causal_tiles=(256,)), "causal_tiles"),
        (dict(online_tiles=(0, 8)), "online_tiles"),
        (dict(causal_kind="diagonal"), "causal_kind"),
        (dict(compile=True), "compile"),
        (dict(parallel_iterations=1.5), "parallel_iterations"),
    ],
)
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
    tuned = ops.AttentionPolicy(causal_kind="rows", causal_rows=128, device="tuned:x")
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


def test_the_plan_of_each_call():
    policy = ops.AttentionPolicy()
    plan = policy.plan
    assert plan(4096, 4096).blocks == (256, None)  # whole rows: 256 x 4096 = 2^20 scores
    assert plan(300, 1100, flash_attention=True).blocks == (512, None)
    assert plan(8192, 20000).blocks == (1024, 1024)  # 64 rows would not fit: online tiles
    assert plan(4096, 4096, is_causal=True).blocks == (256, 256)
    assert dataclasses.replace(policy, causal_kind="rows").plan(4096, 4096, is_causal=True).blocks == (
        256,
        "causal_rows",
    )
    # A band (window, bias, ALiBi, offset) always takes online tiles, with or without causality.
    for rows_policy in (policy, dataclasses.replace(policy, causal_kind="rows")):
        for causal in (False, True):
            assert isinstance(rows_policy.plan(4096, 4096, is_causal=causal, window=64).blocks[1], int)
            assert isinstance(rows_policy.plan(4096, 4096, is_causal=causal, banded=True).blocks[1], int)
    # The dense path below the threshold, when weights are needed, off TensorFlow, with unknown lengths.
    assert not plan(1000, 1000).flash_attention and plan(1024, 1024).flash_attention
    assert not plan(4096, 4096, weights_needed=True).flash_attention
    assert not plan(4096, 4096, backend="jax").flash_attention
    assert not plan(None, 4096).flash_attention and not plan().flash_attention
    assert (
        plan(8, 8, flash_attention=True).flash_attention and not plan(4096, 4096, flash_attention=False).flash_attention
    )
    # Training without causality keeps the dense path while its scores fit the budget.
    scores = 2 * 8 * 4096 * 4096
    assert plan(4096, 4096, batch=2, heads=8, training=True).flash_attention == (12 * scores > policy.training_budget)
    big = dataclasses.replace(policy, training_budget=12 * scores)
    assert not big.plan(4096, 4096, batch=2, heads=8, training=True).flash_attention
    assert big.plan(4096, 4096, batch=2, heads=8, training=True, is_causal=True).flash_attention
    assert big.plan(4096, 4096, batch=None, heads=8, training=True).flash_attention  # unknown batch: over it
    # XLA: "auto" compiles only the float32 tiles that skip work; "always" everything; "never" nothing.
    assert plan(4096, 4096, is_causal=True).xla and not plan(4096, 4096).xla
    assert not plan(4096, 4096, is_causal=True, dtype="bfloat16").xla and not plan(100, 100).xla
    assert dataclasses.replace(policy, compile="always").plan().xla
    assert not dataclasses.replace(policy, compile="never").plan(4096, 4096, is_causal=True).xla


def _spy(monkeypatch, module, name):
    """Record the static arguments each call of kernel `module.name` receives."""
    calls, kernel = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *tensors, **static: calls.append(static) or kernel(*tensors, **static))
    return calls


def test_the_kernels_run_the_plan_of_the_policy_they_are_given(monkeypatch):
    query, key, value = (tf.constant(np.random.default_rng(0).normal(size=(1, 40, 2, 8)), "float32") for _ in range(3))
    dense = ops.scaled_dot_product_attention(query, key, value, is_causal=True, flash_attention=False)
    flash_calls = _spy(monkeypatch, attention, "_flash_kernel")
    for policy, blocks, xla in [
        (ops.AttentionPolicy(causal_tiles=(8, 16)), (8, 16), True),
        (ops.AttentionPolicy(causal_kind="rows", causal_rows=8), (8, "causal_rows"), False),
        (ops.AttentionPolicy(compile="never", causal_tiles=(4, 4)), (4, 4), False),
        (ops.AttentionPolicy(parallel_iterations=3, causal_tiles=(8, 8)), (8, 8), True),
    ]:
        flash_calls.clear()
        out = ops.scaled_dot_product_attention(query, key, value, is_causal=True, flash_attention=True, policy=policy)
        np.testing.assert_allclose(out, dense, atol=1e-5)
        (static,) = flash_calls
        assert (static["blocks"], static["xla"], static["parallel"]) == (blocks, xla, policy.parallel_iterations)
    # The threshold of the policy passed, not the global one, picks the path.
    flash_calls.clear()
    ops.scaled_dot_product_attention(query, key, value, policy=ops.AttentionPolicy(flash_min_scores=40 * 40))
    ops.scaled_dot_product_attention(query, key, value, policy=ops.AttentionPolicy(flash_min_scores=40 * 40 + 1))
    assert len(flash_calls) == 1
    # The dense kernels compile as the policy passed says.
    always, never = ops.AttentionPolicy(compile="always"), ops.AttentionPolicy(compile="never")
    with ops.policy_scope(never):
        for module, name, run in [
            (attention, "_dense_kernel", lambda p: ops.scaled_dot_product_attention(query, key, value, policy=p)),
            (
                rnn_attention,
                "_dot_kernel",
                lambda p: ops.dot_attention(query[:, :, 0], key[:, :, 0], value[:, :, 0], policy=p),
            ),
            (positions, "_add_sinusoids", lambda p: positions.add_sinusoidal_encoding(query[:, :, 0], policy=p)),
        ]:
            calls = _spy(monkeypatch, module, name)
            run(always)
            run(never)
            assert [static["xla"] if "xla" in static else None for static in calls] == [True, False], name


def test_the_tuner_keeps_the_fastest_setting(monkeypatch):
    monkeypatch.setattr(tuning, "LENGTHS", (64,))
    fast = dict(causal_kind="rows", causal_rows=32)
    monkeypatch.setattr(tuning, "CANDIDATES", {"causal": [dict(causal_kind="online"), fast]})
    # Stand-in timings: the tuner's choice, not the clock, is under test.
    monkeypatch.setattr(
        tuning, "_time", lambda policy, causal, length, repeats: 1.0 if policy.causal_kind == "rows" else 2.0
    )
    tuned = tuning.tune(repeats=1, log=lambda _: None)
    assert tuned.causal_kind == "rows" and tuned.causal_rows == 32
    assert tuned.device == f"tuned:{tuning.cpu_model()}"
    monkeypatch.setattr(tuning, "_time", lambda policy, causal, length, repeats: 1.0)  # a tie keeps the default
    assert tuning.tune(repeats=1, log=lambda _: None).causal_kind == "online"


def test_old_spellings_warn_and_still_work(tmp_path):
    with pytest.warns(DeprecationWarning, match="flash_min_scores"):
        policy = ops.AttentionPolicy(blocked_min_scores=8)
    assert policy.flash_min_scores == 8
    with pytest.warns(DeprecationWarning, match="flash_min_scores"):
        assert policy.blocked_min_scores == 8
    with pytest.warns(DeprecationWarning, match="jit_compile"):
        assert ops.AttentionPolicy(search_xla_rows=2).search_xla_rows == 2
    # A file the previous release wrote loads under the new names.
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"cpu": tuning.cpu_model(), "policy": {"blocked_min_scores": 16, "search_xla_rows": 4}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ops.load_policy(str(path)).flash_min_scores == 16


def test_onednn_advice_only_where_it_is_off_on_avx2_and_unchosen(monkeypatch, caplog):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(tuning.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(tuning, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(tuning, "onednn_enabled", lambda: False)
    assert "TF_ENABLE_ONEDNN_OPTS=1" in ops.onednn_advice()
    monkeypatch.setattr(tuning.advise_once, "done", False, raising=False)
    with caplog.at_level("WARNING", logger="keras_seqattn"):
        tuning.advise_once()
        tuning.advise_once()
    assert [r.getMessage() for r in caplog.records].count(ops.onednn_advice()) == 1  # once per process
    monkeypatch.setattr(tuning, "onednn_enabled", lambda: True)  # already on
    assert ops.onednn_advice() is None
    monkeypatch.setattr(tuning, "onednn_enabled", lambda: False)
    monkeypatch.setattr(tuning, "cpu_flags", lambda: {"sse4_2"})  # no AVX2: not measured to help
    assert ops.onednn_advice() is None
    monkeypatch.setattr(tuning, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user chose
    assert ops.onednn_advice() is None
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(tuning.platform, "machine", lambda: "aarch64")
    assert ops.onednn_advice() is None


def test_the_onednn_setting_is_read_and_timed_in_fresh_processes():
    seconds = tuning.time_onednn(length=128, repeats=1)
    # Each child reports the setting TensorFlow started with: one off, one on.
    assert set(seconds) == {False, True} and all(value > 0 for value in seconds.values())


def test_the_tuner_times_an_rnn_attention_step_with_and_without_xla():
    from keras_seqattn.tune import time_rnn_compile

    seconds = time_rnn_compile(repeats=1, batch=2, steps=3, units=4, vocabulary=7)
    assert set(seconds) == {False, True} and all(value > 0 for value in seconds.values())
