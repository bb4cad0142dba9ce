"""The built-book checker (lib.book_check) on hand-made pages: each problem it exists for is found,
and a clean book has none."""

import json

import pytest

from lib import book_check
from lib.results import SYNTHETIC_LABEL

TOC = "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n      - file: page\n"
CLEAN_PAGE = f"""<html><head><link rel="stylesheet" href="_static/book.css"><script src="_static/book.js"></script>
<link rel="canonical" href="https://example.org/page.html"></head>
<body><p>{SYNTHETIC_LABEL}. Text with a link to <a href="https://doi.org/10.1/x">the paper</a>.</p>
<img src="_images/fig.png"><div class="cell_output docutils container"><div class="output stderr">a warning</div></div>
</body></html>"""


@pytest.fixture
def book(tmp_path):
    """A built book of two pages (intro, and 'page' executed from a complete synthetic run)."""
    html, book_dir, run = tmp_path / "html", tmp_path / "book", tmp_path / "results" / "s" / "r"
    for folder in (html / "_static", html / "_images", book_dir, run):
        folder.mkdir(parents=True)
    (tmp_path / "_toc.yml").write_text(TOC)
    (html / "_static" / "book.css").write_text("body { background: url('../_images/fig.png'); }")
    (html / "_static" / "book.js").write_text("")
    (html / "_images" / "fig.png").write_bytes(b"png")
    (html / "intro.html").write_text("<html><body>intro</body></html>")
    (book_dir / "intro.md").write_text("# Intro\n")
    (html / "page.html").write_text(CLEAN_PAGE)
    notebook = json.dumps({"metadata": {"papermill": {"parameters": {"run_dir": str(run)}}}, "cells": []})
    (book_dir / "page.ipynb").write_text(notebook)
    (run / "notebook.ipynb").write_text(notebook)
    (run / "manifest.json").write_text(json.dumps({"status": "complete"}))
    (run / "summary.json").write_text(json.dumps({"synthetic": True}))
    return tmp_path


def _check(root):
    return book_check.check_built_book(root / "html", root / "_toc.yml", root / "book")


def test_a_complete_offline_labelled_book_has_no_problem(book):
    assert _check(book) == []


def test_a_page_missing_from_the_build(book):
    (book / "html" / "page.html").unlink()
    assert _check(book) == [f"page: not built ({book / 'html' / 'page.html'} is missing)"]


@pytest.mark.parametrize("tag", [
    '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
    '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">',
    '<img src="http://example.org/x.png">',
    '<div style="background-image: url(https://example.org/bg.png)"></div>',
    '<style>@font-face { src: url("https://example.org/f.woff2"); }</style>',
    '<iframe src="https://www.youtube.com/embed/x"></iframe>',
    '<style>@import "https://fonts.example.org/lato.css";</style>',
    '<img src="_images/fig.png" srcset="_images/fig.png 1x, https://example.org/x2.png 2x">',
    '<video src="_images/fig.png" poster="https://example.org/poster.png"></video>',
    '<svg><image href="https://example.org/x.png"/></svg>',
])
def test_anything_loaded_from_the_network_is_a_problem(book, tag):
    page = book / "html" / "page.html"
    page.write_text(page.read_text().replace("</body>", tag + "</body>"))
    problems = _check(book)
    assert len(problems) == 1 and problems[0].startswith("page: loads ") and "from the network" in problems[0]


def test_a_stylesheet_loading_a_remote_font_is_a_problem(book):
    (book / "html" / "_static" / "book.css").write_text("@import 'https://fonts.example.org/lato.css';")
    assert _check(book) == ["_static/book.css: loads https://fonts.example.org/lato.css from the network "
                            "(the book must read offline)"]


def test_a_figure_that_did_not_reach_the_build(book):
    (book / "html" / "_images" / "fig.png").unlink()
    problems = _check(book)
    assert "page: _images/fig.png is missing from the built book" in problems


def test_an_executed_page_whose_notebook_is_gone_is_stale_html(book):
    (book / "book" / "page.ipynb").unlink()
    assert _check(book) == [f"page: {book / 'book' / 'page.ipynb'} is missing (the page's HTML is from an earlier build)"]
    (book / "book" / "page.md").write_text("# A text page\n")
    assert _check(book) == []


def test_a_cell_showing_an_error(book):
    page = book / "html" / "page.html"
    error = '<div class="output traceback highlight-ipythontb notranslate"><pre>ValueError</pre></div>'
    page.write_text(page.read_text().replace("</body>", error + "</body>"))
    assert _check(book) == ["page: 1 cell(s) show an error"]


def test_a_synthetic_page_without_the_label(book):
    page = book / "html" / "page.html"
    page.write_text(page.read_text().replace(SYNTHETIC_LABEL, "Data"))
    assert _check(book) == [f"page: made from the synthetic phantom but the page does not say {SYNTHETIC_LABEL!r}"]
    (book / "results" / "s" / "r" / "summary.json").write_text(json.dumps({"synthetic": False}))
    assert _check(book) == []  # real data: no label needed


def test_a_page_left_from_an_earlier_run_or_an_incomplete_one(book):
    run = book / "results" / "s" / "r"
    (run / "notebook.ipynb").write_text(json.dumps({"metadata": {}, "cells": [{"a newer": "run"}]}))
    assert _check(book) == [f"page: {book / 'book' / 'page.ipynb'} is not the notebook of the run in {run} "
                            "(a page from an earlier run: run the book again)"]
    (run / "manifest.json").write_text(json.dumps({"status": "running"}))
    assert _check(book) == [f"page: its run {run} has no complete manifest.json"]
    (book / "book" / "page.ipynb").write_text("{}")
    assert _check(book) == [f"page: {book / 'book' / 'page.ipynb'} does not say which run made it "
                            "(not written by python -m lib run)"]


def test_remote_means_fetched_from_a_host():
    assert book_check.is_remote("https://x.org/a.js") and book_check.is_remote("//x.org/a.js")
    assert not book_check.is_remote("_static/a.js") and not book_check.is_remote("data:image/png;base64,AA")
    assert not book_check.is_remote("#section") and not book_check.is_remote("../_images/a.png")


def test_the_toc_pages_in_order():
    from lib.paths import REPO_ROOT

    assert book_check.toc_pages(REPO_ROOT / "_toc.yml") == [
        "intro", "data", "study_a_et", "study_a_tc", "study_a_wt", "study_a_summary", "study_a_cost"]


def test_the_command_prints_each_problem_and_exits_1(book, capsys):
    args = ["--html", str(book / "html"), "--toc", str(book / "_toc.yml"), "--book", str(book / "book")]
    assert book_check.main(args) == 0
    assert capsys.readouterr().out.strip() == "check-book: 2 page(s), 0 problem(s): complete, offline, labelled"
    (book / "html" / "page.html").unlink()
    assert book_check.main(args) == 1
    assert capsys.readouterr().out.strip().splitlines() == [
        f"page: not built ({book / 'html' / 'page.html'} is missing)", "check-book: 2 page(s), 1 problem(s)"]


@pytest.mark.parametrize("toc_text, reason", [
    (None, "No such file or directory"),
    ("root: [\n", "expected the node content, but found '<stream end>' at line 2"),
    ("format: jb-book\n", "no key 'root'"),
    ("- intro\n- data\n", "expected a mapping with a 'root' key and its chapters"),
])
def test_a_table_of_contents_that_cannot_be_read_is_one_line(book, capsys, toc_text, reason):
    toc = book / "_toc.yml"
    if toc_text is None:
        toc.unlink()
    else:
        toc.write_text(toc_text)
    for html in (book / "html", book / "no-build"):
        assert book_check.main(["--html", str(html), "--toc", str(toc), "--book", str(book / "book")]) == 1
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines == [f"{toc}: cannot read the table of contents ({reason})"]
