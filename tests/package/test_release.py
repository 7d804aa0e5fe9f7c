"""The release: `python -m build` makes an sdist and a wheel of the version written in
keras_seqattn/version.py alone, and pip's build (`pip install .`) the same wheel; the wheel
installs in a fresh virtual environment and imports from outside the repository, with its
metadata (home page, Python versions, dependencies)."""

import os
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile

import keras_seqattn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _run(*command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def test_sdist_and_wheel_build_install_and_import_from_outside(tmp_path):
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", str(dist), ROOT)
    version = keras_seqattn.__version__
    (wheel,) = dist.glob(f"keras_seqattn-{version}-py3-none-any.whl")
    (sdist,) = dist.glob(f"keras_seqattn-{version}.tar.gz")

    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "setup.py", "README.md", "LICENSE", "keras_seqattn/__init__.py"} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"keras_seqattn-{version}.dist-info/METADATA").decode()
    assert "keras_seqattn/ops/flash/tiles.py" in names and not any(name.startswith("tests/") for name in names)
    assert set(metadata.split("Requires-Python: ")[1].split("\n")[0].split(",")) == {">=3.10", "<3.14"}
    for line in (
        f"Version: {version}",
        "Project-URL: Homepage,",
        "Requires-Dist: tensorflow<2.22,>=2.21",
        "Classifier: Programming Language :: Python :: 3.11",
    ):
        assert line in metadata, line

    # pip's own build (what `pip install .` runs, through the setup.py shim's setuptools) writes the
    # same metadata as `python -m build`.
    pip_dist = tmp_path / "pip_dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(pip_dist), ROOT)
    (pip_wheel,) = pip_dist.glob(f"keras_seqattn-{version}-py3-none-any.whl")
    with zipfile.ZipFile(pip_wheel) as archive:
        assert archive.read(f"keras_seqattn-{version}.dist-info/METADATA").decode() == metadata
        assert sorted(archive.namelist()) == sorted(names)

    # A fresh environment: the wheel installed without its dependencies, which it finds in this
    # environment's site-packages (a path entry, so this checkout's editable install is not seen).
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    python = str(fresh / "bin" / "python")
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel))
    out = _run(
        python,
        "-c",
        "import keras_seqattn as k, keras; print(k.__version__, k.__file__); "
        "print(type(k.MultiHeadAttention(2, 4)).__name__)",
        cwd=str(tmp_path),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
    )
    first, second = out.strip().splitlines()[-2:]
    assert first.split()[0] == version and first.split()[1].startswith(site), out
    assert second == "MultiHeadAttention"
