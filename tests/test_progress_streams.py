"""Progress-bar streams in executed notebooks collapse to what a terminal would show at the end."""

import nbformat

from lib.progress_streams import collapse_progress_streams, final_screen, is_progress_text, only_finished_bars

FINISHED = "ODE ET seed 0: epochs: 100%|██████████| 24/24 [06:33<00:00, 16.39s/it, loss=0.1760]"


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


def test_only_finished_tqdm_bars_count_as_finished():
    other = "subset U-Nets: 100%|██████████| 12/12 [16:15<00:00, 81.30s/it]"
    assert only_finished_bars(FINISHED + "\n" + other + "\n")
    assert not only_finished_bars("epochs:  50%|█████     | 12/24 [03:16<03:16, 16.39s/it]\n")  # stopped
    assert not only_finished_bars("epochs: 100%|██████████| 23/24 [06:33<00:16, 16.39s/it]\n")  # n < total
    assert not only_finished_bars(FINISHED + "\nUserWarning: something\n")  # a message beside the bar
    assert not only_finished_bars("")


def test_a_stream_of_finished_bars_is_shown_as_stdout_and_anything_else_stays_stderr():
    stream = nbformat.v4.new_output
    finished, interrupted, warned = (nbformat.v4.new_code_cell("train()") for _ in range(3))
    halfway = "epochs:  50%|█████     | 12/24 [03:16<03:16, 16.39s/it]"
    finished.outputs = [stream("stream", name="stderr", text="\r" + halfway + "\r" + FINISHED + "\n")]
    interrupted.outputs = [stream("stream", name="stderr", text="\r" + halfway)]
    warned.outputs = [stream("stream", name="stderr", text="\r" + FINISHED + "\nUserWarning: careful\n")]
    collapse_progress_streams(nbformat.v4.new_notebook(cells=[finished, interrupted, warned]))
    assert [(o.name, o.text) for o in finished.outputs] == [("stdout", FINISHED + "\n")]
    assert [o.name for o in interrupted.outputs] == ["stderr"]
    assert [(o.name, o.text) for o in warned.outputs] == [("stderr", FINISHED + "\nUserWarning: careful\n")]
