"""Smoke runs of the examples at a tiny size: they run end to end through the public API, and
they learn. Each size was chosen so that today's code reaches a held-out accuracy far above
chance (the translations 0.82-0.92 exact match, where chance is about 0); the bounds leave a
margin for run-to-run variation and fail when a training path is broken."""

import os
import re
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
LEARNED = 0.5


def _run(script, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _accuracy(out, pattern):
    found = re.search(pattern, out)
    assert found, out[-2000:]
    return float(found.group(1))


def test_sort_digits_learns():
    out = _run("sort_digits.py", "--epochs", "6", "--train-size", "2048")
    assert _accuracy(out, r"exact-match accuracy: ([0-9.]+)") >= LEARNED, out[-2000:]


def test_transformer_translation_learns_and_serves(tmp_path):
    out = _run(
        "transformer_translation.py",
        "--epochs",
        "14",
        "--train-size",
        "900",
        "--largest",
        "999",
        "--batch-size",
        "32",
        "--test-size",
        "64",
        "--export-dir",
        str(tmp_path / "served"),
    )
    assert _accuracy(out, r"exact-match accuracy: ([0-9.]+) on 64 held-out") >= LEARNED, out[-2000:]
    assert len(re.findall(r"^served: '.+' -> '.*'$", out, re.M)) == 3, out[-2000:]


def test_translate_dates_learns_plots_and_serves(tmp_path):
    plot = tmp_path / "attention.png"
    out = _run(
        "translate_dates.py",
        "--epochs",
        "6",
        "--train-size",
        "2048",
        "--test-size",
        "64",
        "--plot",
        str(plot),
        "--export-dir",
        str(tmp_path / "served"),
    )
    assert _accuracy(out, r"exact-match accuracy: ([0-9.]+) on 64 held-out dates") >= LEARNED, out[-2000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    served = re.findall(r"^served: '(.+)' -> '(.*)'$", out, re.M)
    assert len(served) == 4, out[-2000:]
    assert sum(iso == "2026-11-22" for _, iso in served) >= 2, served  # the four spellings of one date


def test_translate_dates_writes_no_file_without_plot(tmp_path):
    # Only what is asked for is written: no heat map in the working directory by default.
    subprocess.run(
        [
            sys.executable,
            os.path.join(EXAMPLES, "translate_dates.py"),
            "--epochs",
            "1",
            "--train-size",
            "64",
            "--test-size",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    assert os.listdir(tmp_path) == []


def test_hierarchical_attention_learns_and_finds_the_verdict(tmp_path):
    plot = tmp_path / "han.png"
    out = _run(
        "hierarchical_attention.py", "--epochs", "4", "--train-size", "1500", "--test-size", "200", "--plot", str(plot)
    )
    # Today: accuracy 1.0 (chance 0.5), the verdict weighted highest in 0.62 of reviews (chance about 0.17).
    assert _accuracy(out, r"test accuracy: ([0-9.]+)") >= 0.9, out[-2000:]
    assert _accuracy(out, r"verdict sentence weighted highest: ([0-9.]+)") >= 0.4, out[-2000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_network_learns_both_tasks(tmp_path):
    plot = tmp_path / "hops.png"
    out = _run("memory_network.py", "--epochs", "10", "--train-size", "1000", "--test-size", "200", "--plot", str(plot))
    # Today: task 1 0.99 and task 2 0.69 (chance 1/6 over the places).
    assert _accuracy(out, r"task 1: test accuracy ([0-9.]+)") >= 0.8, out[-2000:]
    assert _accuracy(out, r"task 2: test accuracy ([0-9.]+)") >= 0.45, out[-2000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_attend_tell_soft_learns_locates_plots_and_serves(tmp_path):
    plot = tmp_path / "caption.png"
    out = _run(
        "show_attend_tell.py",
        "--epochs",
        "8",
        "--train-size",
        "2000",
        "--test-size",
        "200",
        "--plot",
        str(plot),
        "--export-dir",
        str(tmp_path / "served"),
    )
    # Today: exact captions 0.31 (chance under 0.01), words 0.81, shape mentions located 0.83 (chance about 0.1).
    assert _accuracy(out, r"exact-caption accuracy: ([0-9.]+)") >= 0.1, out[-2000:]
    assert _accuracy(out, r"word accuracy: ([0-9.]+)") >= 0.65, out[-2000:]
    assert _accuracy(out, r"attention localisation: ([0-9.]+) of shape mentions") >= 0.5, out[-2000:]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(re.findall(r"^served: '.+' \(expected '.+'\)$", out, re.M)) == 3, out[-2000:]


def test_show_attend_tell_hard_learns():
    out = _run(
        "show_attend_tell.py", "--attention", "hard", "--epochs", "8", "--train-size", "2000", "--test-size", "200"
    )
    # Today (straight-through): exact captions 0.21, words 0.79, shape mentions located 0.94.
    assert _accuracy(out, r"exact-caption accuracy: ([0-9.]+)") >= 0.05, out[-2000:]
    assert _accuracy(out, r"word accuracy: ([0-9.]+)") >= 0.65, out[-2000:]
    assert _accuracy(out, r"attention localisation: ([0-9.]+) of shape mentions") >= 0.5, out[-2000:]


def test_language_model_learns_to_count_and_serves(tmp_path):
    out = _run(
        "language_model.py",
        "--epochs",
        "3",
        "--train-size",
        "1500",
        "--test-size",
        "100",
        "--export-dir",
        str(tmp_path / "served"),
    )
    # Today: perplexity 1.11 per character (26 ids), the next number right after 0.30 of held-out
    # prompts (chance about 0: a number written in full, letter by letter).
    assert _accuracy(out, r"held-out perplexity: ([0-9.]+)") <= 1.5, out[-2000:]
    assert _accuracy(out, r"next number correct: ([0-9.]+)") >= 0.15, out[-2000:]
    for search in ("greedy", "top-k 5", "top-p 0.9", "beam 4"):
        assert len(re.findall(rf"^{search}: '.+' -> '.*'$", out, re.M)) == 3, out[-2000:]
    assert len(re.findall(r"^served: '.+' -> '.*'$", out, re.M)) == 3, out[-2000:]
