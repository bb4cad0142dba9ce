"""lib.notebook_times: papermill's per-cell durations summed by section, on hand-made notebooks."""

import json

import pytest

from lib.notebook_times import BEFORE_FIRST_SECTION, cell_seconds, section_seconds


def code(seconds):
    metadata = {} if seconds is None else {"papermill": {"duration": seconds}}
    return {"cell_type": "code", "source": "x = 1", "metadata": metadata, "outputs": []}


def markdown(text):
    return {"cell_type": "markdown", "source": text, "metadata": {}}


NOTEBOOK = {"cells": [
    markdown("# Title\n\nWhat this shows."),
    code(1.5), code(0.5),
    markdown("## Training\n\ntext"),
    code(10.0),
    markdown("### Table II\n"),       # a deeper heading stays in its section
    code(2.0),
    markdown(["Some prose, then\n", "## Explaining\n"]),  # a heading inside a cell, source as a list
    code(None),                        # not timed: counted, adds nothing
    code(3.0),
    {"cell_type": "raw", "source": "## not a heading", "metadata": {}},
    markdown("## Training ##"),        # the same title again (closing #s dropped): summed into the first row
    markdown("```bash\n## a shell comment in a fenced block\n```"),
    code(4.0),
]}


def test_durations_are_summed_under_each_second_level_heading_in_page_order():
    table = section_seconds(NOTEBOOK)
    assert list(table["section"]) == [BEFORE_FIRST_SECTION, "Training", "Explaining"]
    assert table.set_index("section")["seconds"].to_dict() == {BEFORE_FIRST_SECTION: 2.0, "Training": 16.0,
                                                                 "Explaining": 3.0}
    assert table.set_index("section")["code_cells"].to_dict() == {BEFORE_FIRST_SECTION: 2, "Training": 3,
                                                                    "Explaining": 2}
    assert table.set_index("section")["timed_cells"].to_dict() == {BEFORE_FIRST_SECTION: 2, "Training": 3,
                                                                     "Explaining": 1}


def test_another_heading_level_splits_there():
    table = section_seconds(NOTEBOOK, level=3)
    assert table.set_index("section")["seconds"].to_dict() == {BEFORE_FIRST_SECTION: 12.0, "Table II": 9.0}


def test_a_notebook_without_durations_gives_an_empty_table_not_zeros():
    untimed = {"cells": [markdown("## A"), code(None), code(None)]}
    table = section_seconds(untimed)
    assert table.empty and list(table.columns) == ["section", "seconds", "code_cells", "timed_cells"]


def test_a_notebook_file_is_read_and_a_broken_one_is_named(tmp_path):
    path = tmp_path / "run.ipynb"
    path.write_text(json.dumps(NOTEBOOK))
    assert section_seconds(path)["seconds"].sum() == 21.0
    path.write_text("{not json")
    with pytest.raises(ValueError, match="run.ipynb: not a readable notebook"):
        section_seconds(path)


def test_cell_seconds_ignores_what_is_not_a_number():
    assert cell_seconds(code(2)) == 2.0
    assert cell_seconds({"metadata": {"papermill": {"duration": None}}}) is None
    assert cell_seconds({"metadata": {"papermill": {"duration": True}}}) is None
    assert cell_seconds({}) is None


def test_a_hash_inside_a_title_stays_part_of_it():
    table = section_seconds({"cells": [markdown("## Notes on C#"), code(1.0)]})
    assert list(table["section"]) == ["Notes on C#"]
