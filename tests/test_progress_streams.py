"""Progress-bar streams in executed notebooks collapse to what a terminal would show at the end."""

import nbformat

from lib.progress_streams import collapse_progress_streams, final_screen, is_progress_text


def test_carriage_returns_keep_the_last_redraw():
    assert final_screen("a   0%\ra  50%\ra 100%\n") == "a 100%\n"
    assert final_screen("long line\rshort") == "shortline\n"  # a terminal overwrites, it does not clear


def test_nested_bar_with_cursor_up_and_cleared_inner_line():
    # tqdm: an outer bar, an inner bar one line below (leave=False blanks it, cursor up), outer redrawn.
    text = ("\router 0/2\n" "\rinner 0/3\rinner 3/3\r         \r\x1b[A"
            "\router 1/2\n" "\rinner 3/3\r         \r\x1b[A" "\router 2/2\n")
    assert final_screen(text) == "outer 2/2\n"


def test_clear_line_escapes():
    assert final_screen("abcdef\r\x1b[2Kxy\n") == "xy\n"
    assert final_screen("abcdef\rab\x1b[K\n") == "ab\n"


def test_plain_text_is_not_progress():
    assert not is_progress_text("loss 0.3\nwarning: something\n")
    assert is_progress_text("\r 10%") and is_progress_text("bar\x1b[A")


def test_collapse_merges_runs_of_one_stream_and_leaves_prints_alone():
    stream = nbformat.v4.new_output
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [stream("stream", name="stdout", text="epoch summary\n"),
                    stream("stream", name="stderr", text="\repochs:   0%"),
                    stream("stream", name="stderr", text="\repochs:  50%"),
                    stream("stream", name="stderr", text="\repochs: 100%\n"),
                    stream("display_data", data={"text/plain": "figure"}),
                    stream("stream", name="stderr", text="\r         \r")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    removed = collapse_progress_streams(nb)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] == [
        ("stream", "stdout", "epoch summary\n"), ("stream", "stderr", "epochs: 100%\n"), ("display_data", None, None)]
    assert removed == 3
