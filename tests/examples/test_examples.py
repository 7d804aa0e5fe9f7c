"""Smoke runs of the examples at a tiny size: they run end to end through the public API."""

import os
import re
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def _run(script, *args):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_sort_digits_smoke():
    out = _run("sort_digits.py", "--epochs", "1", "--train-size", "256")
    accuracy = re.search(r"exact-match accuracy: ([0-9.]+)", out)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0, out[-2000:]


def test_transformer_translation_smoke(tmp_path):
    out = _run("transformer_translation.py", "--epochs", "1", "--train-size", "256", "--test-size", "8",
               "--export-dir", str(tmp_path / "served"))
    accuracy = re.search(r"exact-match accuracy: ([0-9.]+) on 8 held-out", out)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0, out[-2000:]
    assert len(re.findall(r"^served: '.+' -> '.*'$", out, re.M)) == 3, out[-2000:]


def test_translate_dates_smoke(tmp_path):
    plot = tmp_path / "attention.png"
    out = _run("translate_dates.py", "--epochs", "1", "--train-size", "256", "--test-size", "8",
               "--plot", str(plot), "--export-dir", str(tmp_path / "served"))
    accuracy = re.search(r"exact-match accuracy: ([0-9.]+) on 8 held-out dates", out)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0, out[-2000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(re.findall(r"^served: '.+' -> '.*'$", out, re.M)) == 4, out[-2000:]
