"""Deploy the app to a Hugging Face Space by uploading the committed working tree (not the git history).

    python -m scripts.deploy_space --space USER/NAME [--private] [--dry-run]

Why not `git push`: the Hub refuses a push with any file over 10 MB outside Git LFS, and this repository's
history holds every default model ever committed, as plain git blobs. Uploading the tree through the Hub's HTTP
API sends each large or binary file through LFS (the Hub decides per file) and leaves the history behind: the
Space gets one commit per deploy. The Space's own `.gitattributes` (below) marks the same files for LFS, so a
clone of the Space can be pushed back.

The repository itself does not track the model through LFS: a clone must run without git-lfs installed.
Log in first with `huggingface-cli login` (or set HF_TOKEN). The app then runs on the free CPU tier (2 vCPU).
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_PLAIN_BYTES = 10 * 1024 * 1024  # the Hub refuses larger files outside LFS
LFS_PATTERNS = ("*.onnx", "*.mp4", "*.webm", "*.wav", "*.flac", "*.png", "*.jpg", "*.pkl", "*.pt", "*.bin")
LEFT_OUT = ("tests/*", "harness/*", ".ci/*")  # not needed to run the app
FRONT_MATTER_KEYS = ("title", "sdk", "sdk_version", "app_file", "python_version")


@dataclass
class Plan:
    files: list[str]  # paths relative to ROOT, as uploaded
    lfs: list[str]  # those the Space's .gitattributes routes through LFS
    problems: list[str]  # anything that would make the Space fail to build or refuse the upload


def gitattributes() -> str:
    return "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)


def is_lfs(path: str) -> bool:
    return any(fnmatch.fnmatch(Path(path).name, p) for p in LFS_PATTERNS)


def front_matter(readme: str) -> dict[str, str]:
    """The README's YAML front matter as flat key: value strings (the Space reads it for its settings)."""
    m = re.match(r"---\n(.*?)\n---\n", readme, re.S)
    if not m:
        return {}
    out = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def pinned(requirements: str, package: str) -> str | None:
    m = re.search(rf"^{re.escape(package)}==(\S+)", requirements, re.M | re.I)
    return m.group(1) if m else None


def plan(root: Path = ROOT) -> Plan:
    """What a deploy uploads, and what is wrong with it."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True,
                             text=True).stdout.split("\0")
    files = [f for f in tracked if f and (root / f).is_file()
             and not any(fnmatch.fnmatch(f, p) for p in LEFT_OUT)]
    problems = []
    for f in files:
        size = (root / f).stat().st_size
        if size > MAX_PLAIN_BYTES and not is_lfs(f):
            problems.append(f"{f} is {size / 2**20:.1f} MB and not matched by an LFS pattern")
    meta = front_matter((root / "README.md").read_text(encoding="utf-8"))
    problems += [f"README front matter lacks {k}" for k in FRONT_MATTER_KEYS if k not in meta]
    if meta.get("sdk") != "gradio":
        problems.append(f"README front matter: sdk is {meta.get('sdk')!r}, not gradio")
    gradio = pinned((root / "requirements.txt").read_text(encoding="utf-8"), "gradio")
    if meta.get("sdk_version") != gradio:
        problems.append(f"README front matter: sdk_version {meta.get('sdk_version')} but requirements.txt pins "
                        f"gradio {gradio}")
    if meta.get("app_file") and meta["app_file"] not in files:
        problems.append(f"app_file {meta['app_file']} is not in the upload")
    for needed in ("requirements.txt", "packages.txt", "assets/model/model.onnx", "assets/model/card.json"):
        if needed not in files:
            problems.append(f"{needed} is not in the upload")
    return Plan(files, [f for f in files if is_lfs(f)], problems)


def deploy(space: str, p: Plan, private: bool, root: Path = ROOT) -> str:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi()
    api.create_repo(space, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()
    ops: list = [CommitOperationAdd(".gitattributes", gitattributes().encode())]
    ops += [CommitOperationAdd(f, str(root / f)) for f in p.files if f != ".gitattributes"]
    keep = {op.path_in_repo for op in ops}
    ops += [CommitOperationDelete(f) for f in api.list_repo_files(space, repo_type="space") if f not in keep]
    info = api.create_commit(space, ops, repo_type="space", commit_message=f"Deploy {head}")
    return info.commit_url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", help="USER/NAME of the Space (created if absent)")
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="only check and list what would be uploaded")
    args = ap.parse_args(argv)
    p = plan()
    total = sum((ROOT / f).stat().st_size for f in p.files)
    print(f"{len(p.files)} files, {total / 2**20:.1f} MB; through LFS: {', '.join(p.lfs) or 'none'}")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    if dirty and not args.dry_run:
        p.problems.append("uncommitted changes (a deploy is named after its commit): commit them first")
    for problem in p.problems:
        print("problem:", problem, file=sys.stderr)
    if p.problems:
        return 1
    if args.dry_run or not args.space:
        print("dry run: nothing uploaded" if args.dry_run else "no --space given: nothing uploaded")
        return 0
    print("deployed:", deploy(args.space, p, args.private))
    return 0


if __name__ == "__main__":
    sys.exit(main())
