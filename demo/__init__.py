"""The live demo: UI (ui.py), analysis pipeline (pipeline.py), disagreement rule, gauges, input limits, the
headless CLI (analyze.py) and the ONNX artifact loader (artifact.py). Never imports torch or transformers."""
import os

# Before gradio is imported anywhere: no analytics calls home (the app must run with no internet).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Nor to the Hugging Face hub: a Whisper model *name* (not a folder) then fails at once instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
