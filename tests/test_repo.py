"""Rules of the repository that a script can check."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if "python -m pytest" in line and "pip install" in line)
    assert command.replace("apt-get", "$SUDO apt-get") in ci


def test_app_and_features_do_not_import_torch():
    """The app runs on ONNX Runtime alone; importing the app's modules must not pull in torch."""
    code = ("import sys, selfmm.contract, demo.analyzer, demo.artifact, selfmm.features, selfmm.features.pipeline; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_training_code_does_not_import_gradio():
    for path in list((ROOT / "selfmm").rglob("*.py")) + list((ROOT / "export").rglob("*.py")):
        assert not re.search(r"^\s*(import|from)\s+gradio\b", path.read_text(), re.M), path


def test_imports_point_one_way():
    """selfmm imports neither export, demo, scripts, harness nor tests; the app's and the exporter's code import no
    harness, script or test; a script imports neither another script nor tests (shared code lives in the packages,
    what drives the app from outside in harness/), and the recipe loads without torch."""
    def imports(folder: str, names: str, pattern: str = "*.py") -> list[Path]:
        return [p for p in (ROOT / folder).rglob(pattern)
                if re.search(rf"^\s*(import|from)\s+({names})\b", p.read_text(), re.M)]

    assert imports("selfmm", "export|demo|scripts|harness|tests") == []
    assert imports("demo", "export|scripts|harness|tests") == [] and imports("export", "demo|scripts|harness|tests") == []
    assert imports("scripts", "scripts|tests") == [] and imports("harness", "scripts|tests") == []
    code = ("import sys, selfmm.recipe.splits, selfmm.recipe.corpus, selfmm.recipe.scores, selfmm.recipe.card, "
            "selfmm.recipe.text; bad = [m for m in ('torch',) if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_space_upload_is_accepted_by_the_hub():
    """What scripts/deploy_space.py uploads: no file over 10 MB outside LFS, the front matter the Space reads,
    the gradio version it installs equal to the one the app is tested with."""
    from scripts.deploy_space import MAX_PLAIN_BYTES, front_matter, gitattributes, is_lfs, plan

    p = plan(ROOT)
    assert p.problems == []
    big = [f for f in p.files if (ROOT / f).stat().st_size > MAX_PLAIN_BYTES]
    assert "assets/model/model.onnx" in big and all(is_lfs(f) for f in big)
    assert "filter=lfs" in gitattributes() and not any(f.startswith("tests/") for f in p.files)
    meta = front_matter((ROOT / "README.md").read_text())
    assert meta["colorFrom"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorTo"] in {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert (ROOT / meta["app_file"]).is_file() and meta["python_version"].startswith("3.")
    packages = (ROOT / "packages.txt").read_text().split()
    assert {"ffmpeg", "libgl1"} <= set(packages)
