"""The README's main job draws every picture on a machine without Graphviz (issue 14's acceptance, part 1)."""
import os
import re
import subprocess
import sys

import pytest


def test_main_job_draws_every_picture_without_dot(tmp_path):
    pytest.importorskip("matplotlib")
    bin_dir = tmp_path / "bin"          # PATH holds no `dot` (python runs by its absolute path)
    bin_dir.mkdir()
    out = tmp_path / "pictures"
    env = dict(os.environ, PATH=str(bin_dir), MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "gradtape", "--out", str(out), "--sizes", "4,8"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in ("lecture_graph", "lecture_grad_graph"):
        for ext, magic in ((".svg", b"<svg"), (".png", b"\x89PNG")):
            data = (out / (name + ext)).read_bytes()
            assert magic in data[:400], (name + ext, data[:80])
    assert (out / "forward_vs_reverse.png").read_bytes()[:4] == b"\x89PNG"
    assert "matplotlib (no Graphviz `dot` here)" in r.stdout
    assert f"files written to {out}" in r.stdout
    # every printed check compares gradtape with the notes' closed form (tests/test_lecture_lesson.py recomputes them)
    m = re.search(r"^(\d+) of (\d+) checks agree with the notes' closed forms", r.stdout, re.M)
    assert m and m[1] == m[2] and int(m[1]) >= 30
    lines = r.stdout.splitlines()
    verdicts = [i for i, line in enumerate(lines) if re.search(r"   (agree|DIFFER)\b", line)]
    assert len(verdicts) == int(m[1]) and all("gradtape (" in lines[i] for i in verdicts)
    assert all("closed form " in lines[i] or "closed form " in lines[i - 1] for i in verdicts)
