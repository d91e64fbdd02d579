"""The ``hecsb`` command: every subcommand's --help works and names the subcommand, every program
name a tool prints is one that exists, the console scripts agree with it, and docs/parameters.md is
current."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hecsb_ros.cli import hecsb, params_doc

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "hecsb_ros" / "cli"
SUBCOMMANDS = hecsb.subcommands()


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        hecsb.main(argv)
    assert exit_info.value.code == 0, argv
    return capsys.readouterr().out


@pytest.mark.parametrize("path", sorted(SUBCOMMANDS), ids=" ".join)
def test_every_subcommand_help_works_and_names_itself(capsys, path):
    out = _help(capsys, [*path, "--help"])
    assert out.startswith(f"usage: {' '.join(('hecsb', *path))} "), out[:200]


def test_top_level_and_group_help(capsys):
    assert hecsb.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hecsb {") and all(
        f"\n  {name} " in out for name in hecsb.COMMANDS
    )
    for name, (_, second) in hecsb.COMMANDS.items():
        if isinstance(second, dict):
            assert hecsb.main([name, "-h"]) == 0
            out = capsys.readouterr().out
            assert out.startswith(f"usage: hecsb {name} {{") and all(
                f"\n  {sub} " in out for sub in second
            )
    assert hecsb.main([]) == 2 and hecsb.main(["bench"]) == 2  # no subcommand: the list, exit 2
    assert hecsb.main(["bench", "nosuch"]) == 2
    assert "unknown subcommand 'nosuch'" in capsys.readouterr().err


def _parsers(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "ArgumentParser":
            yield node


def test_every_tool_is_a_subcommand_and_its_prog_is_that_subcommand():
    by_module = {module: path for path, module in SUBCOMMANDS.items()}
    assert len(by_module) == len(SUBCOMMANDS), "two subcommands run the same module"
    for path in sorted(CLI.glob("*.py")):
        if path.stem in ("hecsb", "__main__", "__init__"):
            continue
        parsers = list(_parsers(path))
        has_main = re.search(r"^def main\(", path.read_text(), re.M) is not None
        if not has_main:
            assert not parsers, f"{path.name}: a parser without a main()"
            continue
        assert path.stem in by_module, (
            f"{path.name} has a main(): give it a subcommand in hecsb.COMMANDS"
        )
        assert len(parsers) == 1, path.name
        progs = [kw.value.value for kw in parsers[0].keywords if kw.arg == "prog"]
        assert progs == [" ".join(("hecsb", *by_module[path.stem]))], (path.name, progs)


def test_no_tool_or_page_names_a_dashed_command():
    """Dashed names (hecsb-dedup, ...) were never installed; the commands are 'hecsb
    <subcommand>'."""
    texts = {
        path: path.read_text()
        for path in [*CLI.glob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    }
    for path, text in texts.items():
        assert not re.findall(r"\bhecsb-(?!ros\b)[a-z][a-z-]*", text), path.name


def test_console_scripts_hecsb_and_its_aliases():
    setup = (ROOT / "setup.py").read_text()
    scripts = dict(re.findall(r'"([\w-]+) = (hecsb_ros\.[\w.]+):main"', setup))
    assert scripts["hecsb"] == "hecsb_ros.cli.hecsb"
    for alias, subcommand in hecsb.ALIASES.items():
        path = tuple(subcommand.split()[1:])
        assert scripts[alias] == f"hecsb_ros.cli.{SUBCOMMANDS[path]}", alias
    tools = {
        name
        for name, module in scripts.items()
        if module.startswith("hecsb_ros.cli.") and name != "hecsb"
    }
    assert tools == set(hecsb.ALIASES)
    commands_doc = (ROOT / "docs" / "commands.md").read_text()
    for alias, subcommand in hecsb.ALIASES.items():
        assert f"| `{alias}` | `{subcommand}` |" in commands_doc
    for path in SUBCOMMANDS:
        assert f"`{' '.join(('hecsb', *path))}`" in commands_doc, path


def test_parameters_page_is_current():
    assert params_doc.main(["--check", str(ROOT / "docs" / "parameters.md")]) == 0, (
        "docs/parameters.md is not current: python -m hecsb_ros.cli.params_doc --out "
        "docs/parameters.md"
    )
    text = params_doc.render()
    from hecsb_ros.params import NODE_PARAMS

    for params in NODE_PARAMS.values():
        assert all(f"| `{p.name}` |" in text for p in params)
