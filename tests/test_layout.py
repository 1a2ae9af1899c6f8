"""The project's shape: dependency direction, packaging, and the README's two set-up commands."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_instrument_never_imports_torch_train_or_export():
    for py in (REPO / "instrument").rglob("*.py"):
        assert not _imports(py) & {"torch", "train", "export", "onnx", "librosa"}, py
    code = (
        "import sys, pkgutil, importlib, instrument\n"
        "for m in pkgutil.walk_packages(instrument.__path__, 'instrument.'): importlib.import_module(m.name)\n"
        "print(sorted(k for k in ('torch', 'train', 'export', 'onnx') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_dataset_tools_need_no_torch():
    code = "import sys, train.ingest, train.corpus, train.cli, train.cache; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_dependencies_are_split_and_onnxruntime_chosen_by_marker():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(meta["dependencies"])
    assert "torch" not in base and "librosa" not in base
    for pkg in ("numpy", "sounddevice", "python-osc", "mido", "python-rtmidi", "soundfile", "soxr"):
        assert pkg in base
    ort = [d for d in meta["dependencies"] if d.startswith("onnxruntime")]
    assert len(ort) == 2
    from packaging.markers import Marker

    envs = [
        {"sys_platform": "linux", "platform_machine": "x86_64"},
        {"sys_platform": "linux", "platform_machine": "aarch64"},
        {"sys_platform": "darwin", "platform_machine": "arm64"},
        {"sys_platform": "win32", "platform_machine": "AMD64"},
    ]
    for env in envs:  # exactly one of the two for every platform: never both in one environment
        chosen = [d.split(">=")[0] for d in ort if Marker(d.split(";", 1)[1]).evaluate(env)]
        assert len(chosen) == 1, env
        assert chosen[0] == ("onnxruntime-gpu" if env["platform_machine"] in ("x86_64", "AMD64") else "onnxruntime")
    assert "torch==2.13.0" in meta["optional-dependencies"]["train"]


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- setup -->\s*```(?:bash|sh)\n(.*?)```", readme, re.S)
    assert block, "README needs the fenced set-up block after <!-- setup -->"
    commands = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(commands) == 2
    assert "gesturegan demo" in commands[0]
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1].strip() in ci
