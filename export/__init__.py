"""Checkpoint -> ONNX model artifact (model.onnx with the M, T, A, V heads, tokenizer.json, card.json).

    python -m export --checkpoint runs/x/best.pt --out assets/model [--quantize int8] [--eval-data FILE]

Modules: onnx_export (the graph), parity (ONNX vs PyTorch, run in a fresh process), quantize (int8 and
timing), card (the model card), build (the whole export, written atomically). Importing this package is
light; torch is imported by the modules that need it.
"""
