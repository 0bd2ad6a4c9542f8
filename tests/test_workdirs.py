"""-o is always a complete output or absent, and no folder of a killed run outlives the next run
(codegen/workdirs.py, compiler.write_folder); -o through a symbolic link; the umask is honoured."""

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import main
from codegen.compiler import compile_model, write_folder
from codegen.workdirs import make_folder, sweep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"


def _cli(args, tmpdir: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}
    env.pop("ONNX2MCU_TEST_KILL_AT", None)
    if kill_at:
        env["ONNX2MCU_TEST_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "codegen", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _debris(parent: Path, tmpdir: Path) -> list[str]:
    return sorted([p.name for p in parent.iterdir() if p.name.startswith(".")] +
                  [p.name for p in tmpdir.iterdir() if p.name.startswith("onnx2mcu")])


@pytest.mark.parametrize("point", ["measure", "write", "swap"])
def test_a_killed_compile_leaves_the_output_whole_and_its_debris_is_swept(tmp_path, point):
    tmpdir, parent = tmp_path / "tmp", tmp_path / "work"
    tmpdir.mkdir()
    parent.mkdir()
    out = parent / "out"
    first = ["compile", str(EXAMPLE / "digits.onnx"), "--float", "-o", str(out)]
    second = ["compile", str(EXAMPLE / "digits.onnx"), "--calib", str(EXAMPLE / "calib.npz"), "-o", str(out)]
    assert _cli(first, tmpdir).returncode == 0
    before = _snapshot(out)
    killed = _cli(second, tmpdir, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # the previous complete output, or (killed between the two renames) none; never a partial one
    if point == "swap":
        assert not out.exists()
    else:
        assert _snapshot(out) == before
    assert _debris(parent, tmpdir), "the kill left nothing behind: the test proves nothing"
    done = _cli(second, tmpdir)
    assert done.returncode == 0, done.stderr
    assert _debris(parent, tmpdir) == []
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["mode"] == "int8" and set(_snapshot(out)) >= {"digits.c", "digits.h"}


def test_sweep_spares_live_owners(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    mine = make_folder(tmp_path, ".out.onnx2mcu", "new")
    theirs = tmp_path / f".out.onnx2mcu-{dead}-new-0badc0de"
    theirs.mkdir()
    (theirs / "x.c").write_text("int x;\n")
    stale_file = tmp_path / f".out.onnx2mcu-{dead}-old-12345678"
    stale_file.symlink_to(tmp_path)  # a renamed symlink: removed as a link, its target untouched
    unrelated = tmp_path / ".out.other-1-2"
    unrelated.mkdir()
    removed = sweep(tmp_path, ".out.onnx2mcu")
    assert sorted(removed) == sorted([theirs, stale_file])
    assert mine.is_dir() and unrelated.is_dir() and tmp_path.is_dir()


@pytest.fixture(scope="module")
def emitted():
    return compile_model(EXAMPLE / "digits.onnx", mode="float32").emitted


def test_output_through_a_symlink_replaces_the_target(tmp_path, emitted, capsys):
    real = tmp_path / "real" / "out"
    real.parent.mkdir()
    real.mkdir()
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "out"
    link.symlink_to(real)
    write_folder(emitted, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert (real / "report.json").is_file() and (real / "digits.c").is_file()
    write_folder(emitted, link)  # again, over its own earlier output
    assert link.is_symlink() and (real / "digits.c").is_file()
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []
    # links to a file or to nothing: refused before anything is written
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    for target in (afile, tmp_path / "missing"):
        bad = tmp_path / "links" / f"to_{target.name}"
        bad.symlink_to(target)
        status = main(["compile", str(EXAMPLE / "digits.onnx"), "--float", "-o", str(bad)])
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1 and "symbolic link" in err, err
        assert bad.is_symlink() and not (tmp_path / "missing").exists() and afile.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_modes_follow_the_umask(tmp_path, emitted, umask):
    old = os.umask(umask)
    try:
        out = write_folder(emitted, tmp_path / "nested" / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o777 & ~umask
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name
