"""The documentation site builds with warnings as errors (a docstring parameter that is not in the
signature, a broken link or reference fails it), and its API pages hold every public name."""

import os
import subprocess
import sys

from tests.test_docstrings import _public

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_site_builds_strictly_with_every_public_name(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    pages = "".join(
        open(os.path.join(folder, name), encoding="utf-8").read()
        for folder, _, names in os.walk(tmp_path)
        for name in names
        if name == "index.html"
    )
    names = {}  # an object public under several names is documented under one of them
    for name, obj in _public():
        names.setdefault(id(obj), [f"{obj.__module__}.{obj.__name__}"]).append(name)
    missing = [found[1:] for found in names.values() if not any(f'id="{name}"' in pages for name in found)]
    assert not missing, missing
