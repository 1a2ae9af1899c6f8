"""The README's training, evaluation and sorting commands, run as written there (with tiny sizes
appended: argparse lets a later option override an earlier one)."""

from __future__ import annotations

import re
import shlex
import shutil

from instrument.main import main

from .conftest import REPO

TINY_OVERRIDES = {
    "train": ["--model-dim", "4", "--batch-size", "4", "--n-critic", "1", "--steps", "1", "--checkpoint-every", "1",
              "--preview-every", "1", "--preview-latents", "1", "--griffin-lim-iters", "2", "-q"],
    "classifier": ["--epochs", "2", "-q"],
    "evaluate": ["-n", "4"],
    "dataset": ["-q"],
    "export": ["--seed", "0"],
    "inspect": ["--runs", "2"],
}


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## For researchers: training a generator") : text.index("## For performers: playing a model")]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("gesturegan ")]


def test_readme_training_commands_run_as_written(tiny_cache, corpus_dir, tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    assert len(commands) >= 7 and any("--arch specgan" in c for c in commands)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_cache, tmp_path / "my_cache")
    shutil.copytree(corpus_dir / "trigger", tmp_path / "field_recordings")
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        argv += TINY_OVERRIDES[argv[0]]
        assert main(argv) == 0, cmd
    out = capsys.readouterr().out
    assert "test accuracy" in out and "inception score" in out and "sorted" in out
    assert (tmp_path / "runs" / "wavegan" / "best.pt").is_file() and (tmp_path / "runs" / "spec64" / "config.json").is_file()
    assert (tmp_path / "report.json").is_file() and (tmp_path / "generated.png").is_file()
    assert (tmp_path / "wavegan.onnx").is_file() and (tmp_path / "spec64.onnx").is_file()
    assert "model contract version 1: wavegan" in out and "precision fp16" not in out.split("wavegan.onnx:")[-1]
    # the README's Python snippet for loading a model, run as written, on the file the commands made
    text = (REPO / "README.md").read_text()
    section = text[text.index("## For researchers: exporting a model") : text.index("## For performers: playing a model")]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["audio"].shape == (2, 16384) and abs(scope["audio"]).max() <= 1.0
