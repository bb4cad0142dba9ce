"""Checks on the built HTML book, run last by ``make book`` (``python -m lib check-book``).

What a reader opens must be complete, readable offline, made by this build's runs, and labelled:

- every page of ``_toc.yml`` was built;
- no page loads anything from the network (a script, stylesheet, image, frame or font from a
  CDN is an empty box or a missing equation for a reader offline);
- every file a page loads from the book itself is there (a figure that did not reach the build);
- no executed cell shows an error;
- a page that is not written text (``book/<page>.md``) has its ``book/<page>.ipynb``, and each
  executed page ``book/<page>.ipynb`` is the notebook of a complete run (its
  ``manifest.json`` says so, and the run's own ``notebook.ipynb`` is byte-identical: a page left
  from an earlier run is not), and a page whose run used the synthetic phantom (``summary.json``
  ``synthetic``) says so with :data:`lib.results.SYNTHETIC_LABEL`.

Each problem is one line naming the page. Reads only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lib.paths import REPO_ROOT, display, resolve
from lib.results import SYNTHETIC_LABEL

# <tag attribute> pairs that make the browser fetch something when the page opens.
_FETCHING = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"), ("video", "src"),
             ("audio", "src"), ("embed", "src"), ("object", "data"), ("input", "src"), ("track", "src"),
             ("video", "poster"), ("image", "href"), ("image", "xlink:href"), ("use", "href"), ("use", "xlink:href")}
_SRCSET = {("img", "srcset"), ("source", "srcset")}
# <link rel=...> values that fetch their href (not: canonical, next, prev, search, ...).
_FETCHING_LINK_RELS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "apple-touch-icon",
                       "manifest"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""")
_CSS_IMPORT = re.compile(r"""@import\s+['"]([^'"]+)""")

# A toc page with one of these sources is written text, not an executed notebook.
TEXT_PAGE_SUFFIXES = (".md", ".rst", ".myst")
# MyST-NB renders an error output as <div class="output traceback ...">; nbsphinx as "output_area stderr" (not
# an error by itself), so only the traceback class counts.
_ERROR_CLASSES = {"traceback"}


def css_urls(css: str) -> list[str]:
    """What CSS text fetches: ``url(...)`` and ``@import "..."``."""
    return _CSS_URL.findall(css) + _CSS_IMPORT.findall(css)


@dataclass
class PageScan:
    """What :class:`_PageParser` found in one HTML page."""

    resources: list[str] = field(default_factory=list)
    error_outputs: int = 0
    text: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if (tag, name) in _FETCHING and value:
                self.scan.resources.append(value)
            if (tag, name) in _SRCSET:  # "a.png 1x, https://x/b.png 2x"
                self.scan.resources += [part.split()[0] for part in value.split(",") if part.strip()]
        if tag == "link" and values.get("href"):
            rels = set(values.get("rel", "").lower().split())
            if rels & _FETCHING_LINK_RELS:
                self.scan.resources.append(values["href"])
        if "style" in values:
            self.scan.resources += css_urls(values["style"])
        if "output" in values.get("class", "").split() and _ERROR_CLASSES & set(values["class"].split()):
            self.scan.error_outputs += 1
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.scan.resources += css_urls(data)
        else:
            self.scan.text.append(data)


def scan_page(html: str) -> PageScan:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.scan


def is_remote(url: str) -> bool:
    """Fetched from the network: http(s), protocol-relative ``//host/...`` or another scheme with a host."""
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme in {"http", "https", "ftp"}


def _local_target(page: Path, url: str) -> Path | None:
    """The file a local URL on ``page`` points to (None for data:, javascript:, fragments)."""
    parts = urlsplit(url)
    if parts.scheme or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def css_problems(css_file: Path, html_root: Path) -> list[str]:
    """Remote ``url(...)``/``@import`` in a stylesheet of the book (fonts and images load from there)."""
    text = css_file.read_text(encoding="utf-8", errors="replace")
    remote = sorted({url for url in css_urls(text) if is_remote(url)})
    return [f"{css_file.relative_to(html_root)}: loads {url} from the network (the book must read offline)"
            for url in remote]


def _toc_error_reason(err: Exception) -> str:
    """Why a ``_toc.yml`` could not be read, in a few words: the system's reason, YAML's problem
    and line, or the shape Jupyter Book 1 expects."""
    import yaml

    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if isinstance(err, KeyError):
        return f"no key {err}"
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        return f"{err.problem or type(err).__name__} at line {err.problem_mark.line + 1}"
    if isinstance(err, (TypeError, AttributeError)):
        return "expected a mapping with a 'root' key and its chapters"
    return type(err).__name__


def toc_pages(toc_file: Path) -> list[str]:
    """The ``file`` names of a Jupyter Book 1 ``_toc.yml`` (root first), in order."""
    import yaml

    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in toc.items() if key != "root"})
    return [str(Path(page).with_suffix("")) for page in pages]


def run_problems(page: str, notebook: Path, html_text: str) -> list[str]:
    """The executed page's notebook against the run it came from (see the module docstring)."""
    try:
        page_bytes = notebook.read_bytes()
        run_dir = json.loads(page_bytes)["metadata"]["papermill"]["parameters"]["run_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{page}: {display(notebook)} does not say which run made it (not written by python -m lib run)"]
    run_dir = resolve(run_dir)
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("status") != "complete":
        return [f"{page}: its run {display(run_dir)} has no complete manifest.json"]
    problems = []
    run_notebook = run_dir / "notebook.ipynb"
    if not run_notebook.is_file() or run_notebook.read_bytes() != page_bytes:
        problems.append(f"{page}: {display(notebook)} is not the notebook of the run in {display(run_dir)} "
                        "(a page from an earlier run: run the book again)")
    try:
        synthetic = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("synthetic")
    except (OSError, ValueError, AttributeError):
        synthetic = None
    if synthetic and SYNTHETIC_LABEL not in html_text:
        problems.append(f"{page}: made from the synthetic phantom but the page does not say "
                        f"{SYNTHETIC_LABEL!r}")
    return problems


def check_built_book(html_root: str | Path, toc_file: str | Path = REPO_ROOT / "_toc.yml",
                     book_dir: str | Path = REPO_ROOT / "book") -> list[str]:
    """Every problem with the HTML book in ``html_root`` (empty: none), one line each."""
    html_root, book_dir = Path(html_root), Path(book_dir)
    if not html_root.is_dir():
        return [f"{display(html_root)}: no built book here (run jupyter-book build book first)"]
    problems: list[str] = []
    for page in toc_pages(Path(toc_file)):
        html_file = html_root / f"{page}.html"
        if not html_file.is_file():
            problems.append(f"{page}: not built ({display(html_file)} is missing)")
            continue
        html_text = html_file.read_text(encoding="utf-8", errors="replace")
        scan = scan_page(html_text)
        for url in dict.fromkeys(scan.resources):
            if is_remote(url):
                problems.append(f"{page}: loads {url} from the network (the book must read offline)")
                continue
            target = _local_target(html_file, url)
            if target is not None and not target.is_file():
                problems.append(f"{page}: {url} is missing from the built book")
        if scan.error_outputs:
            problems.append(f"{page}: {scan.error_outputs} cell(s) show an error")
        notebook = book_dir / f"{page}.ipynb"
        if notebook.is_file():
            problems += run_problems(page, notebook, " ".join(scan.text))
        elif not any((book_dir / f"{page}{suffix}").is_file() for suffix in TEXT_PAGE_SUFFIXES):
            problems.append(f"{page}: {display(notebook)} is missing (the page's HTML is from an earlier build)")
    for css in sorted(html_root.rglob("*.css")):
        problems += css_problems(css, html_root)
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lib check-book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", default=str(REPO_ROOT / "book" / "_build" / "html"))
    parser.add_argument("--toc", default=str(REPO_ROOT / "_toc.yml"))
    parser.add_argument("--book", default=str(REPO_ROOT / "book"), help="the folder of the pages' sources")
    args = parser.parse_args(argv)
    import yaml

    try:
        pages = len(toc_pages(Path(args.toc)))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        reason = _toc_error_reason(err)
        print(f"{display(Path(args.toc))}: cannot read the table of contents ({reason})")
        return 1
    problems = check_built_book(args.html, args.toc, args.book)
    for line in problems:
        print(line)
    print(f"check-book: {pages} page(s), {len(problems)} problem(s)" + ("" if problems else ": complete, offline, labelled"))
    return 1 if problems else 0
