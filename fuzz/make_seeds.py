#!/usr/bin/env python3
"""Builds the fuzz seed corpus from the project's own test inputs.

    python3 fuzz/make_seeds.py

Writes (and replaces) the generated seeds:
- fuzz/seeds/request_parser/corpus-NNN: each item's "request" object of
  tests/data/validation-corpus.json, as compact JSON.
- fuzz/seeds/docker_parser/corpus-NNN: the distinct "command" lines of that corpus.
- fuzz/seeds/docker_parser/<module>-NNN: the docker command lines in the tests of
  src/docker/*.rs (accepted and refused ones alike). Tests that parse arguments without
  the leading words (the container and compose parsers, classify) get them prefixed.

Seeds named `crash-*` are regression inputs for findings; they are never touched here.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
CONTAINER_ACTIONS = ["stop", "start", "restart", "kill", "rm", "inspect", "logs"]

# A Rust string literal: "..." with escapes, or r"..." / r#"..."#.
LITERAL = re.compile(r'r(#*)"(.*?)"\1|"((?:[^"\\]|\\.)*)"', re.S)
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def unescape(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "\n":  # line continuation: skip the newline and leading whitespace
            i += 2
            while i < len(body) and body[i] in " \t\n":
                i += 1
        elif nxt == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end + 1
        elif nxt == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            out.append(ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def literals(text):
    for match in LITERAL.finditer(text):
        if match.group(2) is not None:
            yield match.start(), match.group(2)
        else:
            yield match.start(), unescape(match.group(3))


def test_section(path):
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    return text[cut:] if cut >= 0 else ""


def is_command_line(text):
    if "{" in text and ("{line" in text or "{}" in text):
        return False  # a format string of a test message, not an input
    if text.startswith("docker global option"):
        return False  # an expected error message
    first, _, rest = text.partition(" ")
    if first in ("docker", "docker-compose"):
        return True
    # Other programs, which the parser must refuse: only with arguments.
    return bool(rest) and (first in ("sudo", "podman", "rm") or first.startswith("/"))


def docker_lines_from_tests():
    """(module, line) pairs from the tests of src/docker/*.rs."""
    found = []
    for path in sorted((ROOT / "src" / "docker").glob("*.rs")):
        module = path.stem
        if module == "classify":
            continue  # its tests give the arguments after `docker`; see below
        tests = test_section(path)
        base = None
        for start, value in literals(tests):
            if value.startswith("{base} ") and base is not None:
                found.append((module, value.replace("{base}", base)))
                continue
            if "{word}" in value and value.startswith("docker"):
                for word in CONTAINER_ACTIONS:
                    found.append((module, value.replace("{word}", word)))
                continue
            if value.startswith("docker compose -f") and value.endswith(".env.prd"):
                base = value
            if is_command_line(value):
                found.append((module, value))
                continue
            # Arguments without their leading words.
            before = tests[max(0, start - 60) : start]
            if module == "container":
                action = re.search(r"ContainerAction::(\w+),\s*$", before)
                if action:
                    found.append((module, f"docker {action.group(1).lower()} {value}"))
            elif module == "compose" and re.search(r"parse_words\(\s*$", before):
                found.append((module, f"docker compose {value}"))
    # classify's tests give the arguments after `docker`: the first literal of each tuple
    # or array element in its test tables.
    for start, value in literals(test_section(ROOT / "src" / "docker" / "classify.rs")):
        if value.startswith("`docker") or " " in value and value[0].isupper():
            continue  # an expected reason, not a command
        if "{line" in value:
            continue
        if value and not value.startswith(("unknown docker", "balanced")):
            found.append(("classify", f"docker {value}".rstrip()))
    return found


def write_seeds(directory, prefix, contents):
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"{prefix}-*"):
        old.unlink()
    for index, content in enumerate(contents):
        (directory / f"{prefix}-{index:03}").write_bytes(content.encode())


def main():
    corpus = json.loads((ROOT / "tests" / "data" / "validation-corpus.json").read_text())
    requests = [json.dumps(item["request"], ensure_ascii=False) for item in corpus]
    write_seeds(SEEDS / "request_parser", "corpus", requests)

    seen = set()
    by_source = {}
    commands = [item["request"].get("command") for item in corpus]
    for source, line in [("corpus", c) for c in commands if c] + docker_lines_from_tests():
        if line in seen:
            continue
        seen.add(line)
        by_source.setdefault(source, []).append(line)
    for source, lines in by_source.items():
        write_seeds(SEEDS / "docker_parser", source, lines)

    total = sum(len(lines) for lines in by_source.values())
    print(f"request_parser: {len(requests)} seeds; docker_parser: {total} seeds "
          f"({', '.join(f'{s} {len(l)}' for s, l in by_source.items())})", file=sys.stderr)


if __name__ == "__main__":
    main()
