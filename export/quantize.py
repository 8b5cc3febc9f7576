"""int8 dynamic quantization: weights of MatMul/Gemm stored as int8, activations quantized on the fly.

No calibration data is needed, which suits a model whose inputs (webcam features) differ from any fixed set.
"""
from __future__ import annotations

from pathlib import Path


def quantize_int8(src: Path, dst: Path) -> None:
    """Write the int8 version of `src` to `dst` (one file)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a generic pre-processing hint on the root logger
    try:
        # LSTMs stay fp32: they are tiny, and int8 LSTM gates moved the audio head by up to 0.26 on [-3, 3]
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=False, reduce_range=False,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        root.setLevel(level)
