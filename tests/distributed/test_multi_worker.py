"""Models built from these layers train under MultiWorkerMirroredStrategy: two worker processes
on localhost (TF_CONFIG with loopback ports) train a Transformer encoder-decoder and an
AttentionDecoder model, and their loss trajectory equals one process's with the same global batch;
after training, each worker's searches decode what one process's do."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

JOB = os.path.join(os.path.dirname(__file__), "multi_worker_job.py")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(kind, out, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, JOB, kind, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(processes, timeout=300):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:  # a worker left waiting for its peer is stopped, never left behind
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-4000:]


@pytest.mark.parametrize("kind", ["transformer", "rnn"])
def test_two_workers_train_with_the_loss_trajectory_of_one_process(kind, tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    jobs = [
        _start(
            kind, tmp_path / f"worker{i}.json", {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        )
        for i in range(2)
    ]
    _finish(jobs)
    _finish([_start(kind, tmp_path / "single.json")])
    results = [json.loads((tmp_path / name).read_text()) for name in ("worker0.json", "worker1.json", "single.json")]
    assert [r["replicas"] for r in results] == [2, 2, 1]
    single = results[2]["loss"]
    assert single[-1] < single[0]  # it trains
    for worker in results[:2]:
        np.testing.assert_allclose(worker["loss"], single, rtol=1e-4)
        if kind == "rnn":  # decoding after training: the same tokens
            for search in ("greedy", "beam"):
                assert worker[search] == results[2][search], search
