"""The gesturegan command: help, the dataset commands as the README shows them, and clean errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from instrument.main import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instrument", *args], capture_output=True, text=True, cwd=cwd or REPO, timeout=300)


def test_help_lists_the_commands_and_needs_no_torch():
    code = "import sys; from instrument.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "False"
    r = _run("--help")
    assert r.returncode == 0 and "demo" in r.stdout and "dataset" in r.stdout
    for sub in (["dataset", "--help"], ["dataset", "build", "--help"], ["dataset", "synth", "--help"], ["demo", "--help"]):
        assert _run(*sub).returncode == 0, sub


def test_the_instruments_own_commands_load_no_plugin():
    """``gesturegan play`` starts in the instrument package; train and export load only for their commands."""
    code = ("import sys; from instrument.main import build_parser\n"
            "build_parser('play'); print(sorted(m for m in ('train', 'export', 'torch') if m in sys.modules))\n"
            "build_parser('export'); print('export.commands' in sys.modules, 'train.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True False"]


# An install without the [train] extra, seen from inside: find_spec answers None for torch and onnx.
NO_TORCH = ("import importlib.util, sys\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] in ('torch', 'onnx') else real(name, *a)\n"
            "from instrument.main import main\n"
            "sys.exit(main(sys.argv[1:]))\n")


def test_an_install_without_torch_lists_what_it_can_run_and_says_what_the_extra_adds(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, cwd=REPO, timeout=120)

    r = run("--help")
    assert r.returncode == 0
    listed = {ln.split()[0] for ln in r.stdout.splitlines() if ln.startswith("    ") and not ln.startswith("     ")}
    assert {"demo", "play", "render", "inspect", "dataset"} <= listed and not listed & {"train", "classifier", "evaluate", "export"}
    assert "With the [train] extra (pip install 'gesturegan[train]'): train, classifier, evaluate, export." in " ".join(r.stdout.split())
    r = run("dataset", "--help")
    assert r.returncode == 0 and "build" in r.stdout and "sort" not in r.stdout
    for args in (["train", str(tmp_path), "--out", str(tmp_path / "run")], ["export", "run", "-o", "m.onnx"],
                 ["dataset", "sort", "x", "--into", "y", "--classifier", "c.pt"]):
        r = run(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "this install lacks" in r.stderr and "pip install 'gesturegan[train]'" in r.stderr, r.stderr
    r = run("dataset", "synth", "--out", str(tmp_path / "corpus"), "--per-category", "1", "-q")  # what it can run, runs
    assert r.returncode == 0 and "wrote 4 files" in r.stdout, r.stderr


def test_the_instruments_own_commands_are_the_ones_it_registers():
    import argparse

    from instrument.main import OWN_COMMANDS, _own

    sub = argparse.ArgumentParser().add_subparsers()
    _own(sub)
    assert set(sub.choices) == OWN_COMMANDS


def test_a_broken_plugin_does_not_break_the_instrument():
    """A research package that fails to import: play and the help still work; its command says why."""
    code = ("import sys, importlib.metadata as md\n"
            "real = md.EntryPoint.load\n"
            "def load(self):\n"
            "    if self.name == 'train': raise ImportError('libtorch_cpu.so: cannot open shared object file')\n"
            "    return real(self)\n"
            "md.EntryPoint.load = load\n"
            "from instrument.main import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0 and "Installed but broken (run one to see why): train." in " ".join(r.stdout.split())
    r = subprocess.run([sys.executable, "-c", code, "train", "x"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "libtorch_cpu.so" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = subprocess.run([sys.executable, "-c", code, "devices"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr


def test_a_mistyped_command_is_answered_with_every_choice():
    r = _run("trian")
    assert r.returncode == 2 and "invalid choice: 'trian'" in r.stderr
    assert "'train'" in r.stderr and "'play'" in r.stderr


@pytest.mark.skipif(shutil.which("gesturegan") is None, reason="gesturegan is not installed on PATH (pip install -e .)")
def test_console_script_is_installed():
    r = subprocess.run(["gesturegan", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("gesturegan ")


def test_readme_research_workflow(tmp_path, capsys):
    """The README's researcher commands, as written there."""
    assert main(["dataset", "synth", "--out", str(tmp_path / "corpus"), "--per-category", "6", "--seed", "0", "-q"]) == 0
    assert "wrote 24 files" in capsys.readouterr().out
    # a user's own recordings folder, with a file the decoder must skip
    (tmp_path / "corpus" / "trigger" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    report = tmp_path / "report.json"
    assert main(["dataset", "build", str(tmp_path / "corpus"), "--out", str(tmp_path / "cache"), "--clip-samples", "8192", "--overlap", "0.5",
                 "--min-clips", "4", "--report", str(report), "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 files skipped" in out and "trigger/broken.wav" in out
    assert json.loads(report.read_text())["skipped"][0][0] == "trigger/broken.wav"
    png = tmp_path / "clips.png"
    assert main(["dataset", "info", str(tmp_path / "cache"), "--verify", "--png", str(png)]) == 0
    assert "hash verified" in capsys.readouterr().out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["dataset", "info", str(tmp_path / "cache"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    # 16384-sample files cut into 8192-sample clips overlapping by half: starts 0, 4096, 8192 -> 3 each
    # (minus the decayed tails of trigger files that fall under -60 dBFS)
    dropped = json.loads(report.read_text())["below_threshold"]
    assert 0 < dropped < 24 and info["clips"] == 72 - dropped and info["settings"]["hop_samples"] == 4096


def test_demo_makes_and_reports_the_corpus(tmp_path):
    r = _run("demo", "--corpus", "--out", str(tmp_path / "demo"), "--per-category", "4", "-q")
    assert r.returncode == 0, r.stderr
    assert "made 16 gesture recordings" in r.stdout and "continuous_repetition" in r.stdout
    assert (tmp_path / "demo" / "corpus-spectrograms.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "cache" / "manifest.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["dataset", "build", "{tmp}/missing", "--out", "{tmp}/c"], "dataset root '{tmp}/missing' does not exist"),
        (["dataset", "build", "{tmp}", "--out", "{tmp}/c", "--clip-samples", "20000"], "clip_samples must be a power of 2"),
        (["dataset", "build", "{tmp}", "--out", "{tmp}/c", "--clip-samples", "lots"], "clip length must be an integer"),
        (["dataset", "build", "{tmp}", "--out", "{tmp}/c", "--align", "beats"], "invalid choice: 'beats'"),
        (["dataset", "build", "{tmp}", "--out", "{tmp}/c", "--overlap", "1.5"], "overlap must be in [0, 1)"),
        (["dataset", "info", "{tmp}/nocache"], "does not exist"),
        (["dataset", "synth", "--out", "{tmp}/s", "--categories", "drones"], "category must be one of"),
    ],
)
def test_user_mistakes_get_one_clear_line_not_a_traceback(tmp_path, args, message):
    r = _run(*[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    assert message.format(tmp=tmp_path) in r.stderr
    assert "Traceback" not in r.stderr


def test_empty_category_is_named(tmp_path):
    (tmp_path / "root" / "trigger").mkdir(parents=True)
    sf.write(tmp_path / "root" / "trigger" / "a.wav", np.zeros(100, np.float32), 16000)
    (tmp_path / "root" / "continuous_variation").mkdir()
    r = _run("dataset", "build", str(tmp_path / "root"), "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "continuous_variation' contains no audio files" in r.stderr
