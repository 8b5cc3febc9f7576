"""The app's pipeline without the UI: analyse files (and/or typed text) and print the results.

    python -m demo.analyze clip.mp4 voice.wav --json          # one JSON object a line, one per input
    python -m demo.analyze --text "I loved it" [--model DIR]   # a readable table

With files and --text, the text replaces each file's transcript. The exit status is 1 when any input could
not be analysed (its line then reads {"input", "error"}), 2 when the model cannot be loaded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from demo.formatting import result_table
from demo.limits import InputError
from demo.analyzer import DEFAULT_MODEL


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo.analyze", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", help="video or audio files")
    p.add_argument("--text", help="typed text: analysed alone, or instead of each file's transcript")
    p.add_argument("--model", default=os.environ.get("SELFMM_MODEL", str(DEFAULT_MODEL)),
                   help="model artifact folder (default assets/model)")
    p.add_argument("--asr-model", default=os.environ.get("SELFMM_ASR_MODEL") or None,
                   help="a CTranslate2 Whisper model folder (default: the offline tiny.en)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--no-warm-up", action="store_true", help="skip the warm-up (the first file's timings then "
                   "include one-off set-up costs)")
    args = p.parse_args(argv)
    if not args.files and not args.text:
        p.error("give at least one file or --text")

    from demo.artifact import ArtifactError
    from demo.analyzer import Analyzer, SetupError

    try:
        analyzer = Analyzer.load(args.model, warm_up=not args.no_warm_up, asr_model=args.asr_model)
    except (ArtifactError, OSError) as e:
        print(f"Cannot use the model in {args.model}: {e}", file=sys.stderr)
        return 2
    except SetupError as e:
        print(f"Cannot load the speech recognition model: {e}", file=sys.stderr)
        return 2

    failed = 0
    inputs: list[tuple[str | None, str]] = [(f, f) for f in args.files] or [(None, "<text>")]
    for media, label in inputs:
        try:
            out = analyzer.analyze(media, args.text, name=label).to_json()
        except InputError as e:
            out = {"input": label, "error": str(e)}
        except Exception as e:  # one bad input must not stop the others
            out = {"input": label, "error": f"the analysis failed: {type(e).__name__}: {e}"}
        failed += "error" in out
        print(json.dumps(out) if args.json else result_table(out) + "\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
