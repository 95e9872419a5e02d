"""benchmarks/RESULTS.md is shared by every benchmark: each one rewrites only its own "## " section."""
import os
import re

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def write_section(name: str, body: str, path: str = PATH) -> None:
    """Replace (or append) the section headed `## name`, keeping every other section as it is."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmark results\n"
    section = f"## {name}\n\n{body.rstrip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.rstrip() + "\n")
