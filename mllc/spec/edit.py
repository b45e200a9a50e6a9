"""Round-trip edits of a spec's text: change one environment's ``model`` and nothing else.

The edit works on the text, not on re-dumped data: the scalar of
``environments.ENV.model`` is replaced in place at the position the safe loader
recorded (quote style kept), or, when the environment has no ``model`` key, one
line ``model: VERSION`` is inserted right after the environment's key line,
indented like its other keys. Comments, order and formatting are untouched;
exactly one line changes. Anything the edit cannot do safely (a block scalar, a
flow-style environment without ``model``) is refused rather than rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from mllc.errors import MllcError
from mllc.spec.yamlsafe import YamlProblem, load_text


class SpecEditError(MllcError):
    """The spec text cannot be edited in place."""

    message = "cannot edit the spec"


@dataclass(frozen=True)
class Edit:
    """The edited text and the one line that changed (1-based; ``old`` is None if inserted)."""

    text: str
    line: int
    old: str | None
    new: str


def _split(text: str) -> list[str]:
    # keepends, and only \n (with an optional \r before it) ends a line, as YAML reads it
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _ending(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def set_env_model(text: str, env: str, version: str) -> Edit:
    """``text`` with ``environments.<env>.model`` set to ``version``; SpecEditError if unsafe."""
    try:
        loaded = load_text(text)
    except YamlProblem as problem:
        raise SpecEditError(f"cannot read the spec: {problem.message}") from None
    envs = loaded.data.get("environments") if isinstance(loaded.data, dict) else None
    if not isinstance(envs, dict) or not isinstance(envs.get(env), dict):
        raise SpecEditError(f"the spec has no environment {env!r}")
    lines = _split(text)
    values = loaded.positions.values
    path = ("environments", env, "model")
    if path in loaded.positions.keys and path in values:
        return _replace(lines, values[path], str(envs[env]["model"]), version, env)
    return _insert(lines, loaded.positions.keys[("environments", env)], values, env, version)


def _replace(lines: list[str], pos: tuple[int, int], old: str, version: str, env: str) -> Edit:
    line_no, col = pos
    line = lines[line_no - 1]
    start = col - 1
    rest = line[start:]
    quote = rest[:1] if rest[:1] in ("'", '"') else ""
    written = f"{quote}{old}{quote}"
    after = rest[len(written) : len(written) + 1]
    if not rest.startswith(written) or (after and after not in " \t\r\n,}#"):
        raise SpecEditError(
            f"line {line_no}: environments.{env}.model is not written as a plain or quoted "
            "scalar on one line; edit it by hand"
        )
    new = line[:start] + f"{quote}{version}{quote}" + line[start + len(written) :]
    lines[line_no - 1] = new
    return Edit("".join(lines), line_no, line.rstrip("\r\n"), new.rstrip("\r\n"))


def _insert(
    lines: list[str],
    key_pos: tuple[int, int],
    values: dict[tuple[str | int, ...], tuple[int, int]],
    env: str,
    version: str,
) -> Edit:
    key_line = key_pos[0]
    value_line, value_col = values[("environments", env)]
    first = lines[value_line - 1][value_col - 1 :]
    if first.startswith("{") or value_line <= key_line:
        raise SpecEditError(
            f"line {key_line}: environment {env!r} is written in flow style ({{...}}) and has "
            f"no model key; add 'model: {version}' to it by hand"
        )
    ending = _ending(lines[key_line - 1]) if key_line <= len(lines) else "\n"
    if not lines[key_line - 1].endswith("\n"):  # the key is the file's unterminated last line
        lines[key_line - 1] += ending
    new = " " * (value_col - 1) + f"model: {version}"
    lines.insert(key_line, new + ending)
    return Edit("".join(lines), key_line + 1, None, new)
