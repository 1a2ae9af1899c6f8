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


def test_every_file_is_written_through_the_one_atomic_writer():
    """instrument/files.py's atomic_file is the only place that renames a temporary over a file, except
    the dataset build, which streams its clips to a temporary whose final name is their hash."""
    for pkg in ("instrument", "train", "export"):
        for py in (REPO / pkg).rglob("*.py"):
            text = py.read_text()
            calls = len(re.findall(r"os\.replace\(|os\.fsync\(|\btmp\w*\.replace\(", text))
            allowed = {"instrument/files.py": 3, "train/build.py": 2}.get(py.relative_to(REPO).as_posix(), 0)
            assert calls == allowed, f"{py}: {calls} renames/fsyncs of its own; use instrument.files.atomic_file"


def test_every_command_entry_point_names_a_command():
    """pyproject's gesturegan.commands entry points, as installed, load to instrument.main.Command objects
    that register exactly the subcommand they are named after."""
    import argparse
    from importlib.metadata import entry_points

    from instrument.main import ENTRY_POINTS, OWN_COMMANDS, Command

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINTS]
    installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}
    assert set(declared) == set(installed) and not set(declared) & OWN_COMMANDS
    for name, ep in installed.items():
        command = ep.load()
        assert isinstance(command, Command), name
        sub = argparse.ArgumentParser().add_subparsers()
        command.register(sub)
        assert set(sub.choices) == {name}


def _late_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, statement, explained) for each import inside a function: explained when a comment is on
    its line, or on the line before the run of import lines it belongs to."""
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    i = sub.lineno - 1
                    start = i
                    while start > 0 and (lines[start - 1].strip().startswith(("import ", "from ")) or not lines[start - 1].strip()):
                        start -= 1
                    explained = "#" in lines[i] or "#" in lines[start - 1] or any("#" in lines[k] for k in range(start, i))
                    out.append((sub.lineno, lines[i].strip(), explained))
    return out


def test_imports_are_at_the_top_unless_a_comment_says_why():
    """The top of a module shows what it depends on; an import inside a function says why it waits (a
    heavy or optional dependency, a platform's module, a circle)."""
    bad = [f"{py.relative_to(REPO)}:{n}: {text}" for pkg in ("instrument", "train", "export") for py in sorted((REPO / pkg).rglob("*.py"))
           for n, text, explained in _late_imports(py) if not explained]
    assert not bad, "imports inside functions without a comment saying why:\n" + "\n".join(bad)


def _module_graph() -> dict[str, set[str]]:
    """The project's modules and what each imports, anywhere in it (module level, try blocks and
    function bodies; ``if TYPE_CHECKING:`` blocks, which never run, left out)."""
    mods = {}
    for pkg in ("instrument", "train", "export", "presets"):
        for py in (REPO / pkg).rglob("*.py"):
            name = ".".join(py.relative_to(REPO).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = py
    graph = {}
    for name, py in mods.items():
        package = name if py.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()

        def visit(stmts):
            for node in stmts:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                if isinstance(node, ast.Try):
                    visit(node.body + [h for x in node.handlers for h in x.body] + node.orelse + node.finalbody)
                elif isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
                    visit(node.body + getattr(node, "orelse", []))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(node.body)
                elif isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                        base = ".".join(parts + ([node.module] if node.module else []))
                    deps.update([base] + [f"{base}.{a.name}" for a in node.names])

        visit(ast.parse(py.read_text(), str(py)).body)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def test_no_module_imports_itself_back():
    """No import circle among the project's modules, not even through an import that waits inside a
    function: a module that needs another's back has its parts in the wrong place."""
    graph = _module_graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(m: str, path: list[str]) -> None:
        seen[m] = 1
        for d in sorted(graph[m]):
            assert seen.get(d) != 1, "import circle: " + " -> ".join(path[path.index(d):] + [d]) if d in path else d
            if d not in seen:
                walk(d, path + [d])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            walk(m, [m])


MAX_MODULE_LINES = 400


def test_modules_are_at_most_400_lines():
    """A module is one concept a newcomer can read through; past 400 lines it is two."""
    long = [f"{py.relative_to(REPO)}: {n} lines" for pkg in ("instrument", "train", "export") for py in sorted((REPO / pkg).rglob("*.py"))
            if (n := len(py.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concept):\n" + "\n".join(long)


def test_dataset_tools_need_no_torch():
    code = "import sys, train.ingest, train.build, train.corpus, train.gestures, train.cli, train.cache; print('torch' in sys.modules)"
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


if __name__ == "__main__":  # python tests/test_layout.py: the module list with line counts, and what each imports
    for name, deps in sorted(_module_graph().items()):
        path = REPO / Path(*name.split("."))
        py = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        print(f"{name:<28} {len(py.read_text().splitlines()):>4}  <- {', '.join(sorted(deps)) or '-'}")
