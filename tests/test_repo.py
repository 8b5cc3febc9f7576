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
    code = ("import sys, demo.pipeline, demo.artifact, selfmm.features, selfmm.features.pipeline; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_training_code_does_not_import_gradio():
    for path in list((ROOT / "selfmm").rglob("*.py")) + list((ROOT / "export").rglob("*.py")):
        assert not re.search(r"^\s*(import|from)\s+gradio\b", path.read_text(), re.M), path
