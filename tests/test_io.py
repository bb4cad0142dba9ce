import json

import pytest

from lib import io


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path):
    target = tmp_path / "a.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_json_handles_numpy(tmp_path):
    import numpy as np

    io.write_json(tmp_path / "x.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert io.read_json(tmp_path / "x.json") == {"a": 0.5, "b": [0, 1]}
