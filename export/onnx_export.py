"""Trace a SelfMM to one self-contained ONNX file whose outputs are the four heads.

The legacy TorchScript exporter (`dynamo=False`) is used: it writes weights inside the .onnx file, and its
`dynamic_axes` give symbolic batch and time axes. Because tracing can silently bake a shape into the graph,
`check_graph` verifies the declared axes are symbolic, and the parity check runs many other shapes.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from selfmm.contract import AXES, HEADS, INPUTS
from selfmm.model import SelfMM

OPSET = 17
DYNAMIC_AXES = {**{k: {i: a for i, a in enumerate(AXES[k]) if a} for k in INPUTS},
                **{h: {0: "batch"} for h in HEADS}}


class ExportError(RuntimeError):
    """The export cannot produce a trustworthy artifact (bad checkpoint, frozen axis, parity failure)."""


class Heads(nn.Module):
    """SelfMM restricted to the four predictions, each flattened to (B,)."""

    def __init__(self, model: SelfMM):
        super().__init__()
        self.model = model

    def forward(self, text_ids: Tensor, text_mask: Tensor, audio: Tensor, audio_lengths: Tensor,
                vision: Tensor, vision_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.model(text_ids, text_mask, audio, audio_lengths, vision, vision_lengths)
        return tuple(out[h].reshape(-1) for h in HEADS)


def example_inputs(model: SelfMM) -> tuple[Tensor, ...]:
    """Tracing inputs: batch 2 and distinct lengths > 1, so that no axis looks like a constant 1 to the tracer,
    and a text mask with padding (so the attention-mask path, not a shortcut for full masks, is traced)."""
    c = model.config
    g = torch.Generator().manual_seed(0)
    vocab = int(c.text_encoder.get("vocab_size", 2))
    ids = torch.randint(1, max(vocab, 2), (2, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    return (ids * mask, mask, torch.randn(2, 5, c.audio_in, generator=g), torch.tensor([5, 3]),
            torch.randn(2, 6, c.vision_in, generator=g), torch.tensor([6, 2]))


def export_onnx(model: SelfMM, path: Path, opset: int = OPSET) -> None:
    """Write `path` (one file, weights inside). The model is put in eval mode (dropout off)."""
    wrapper = Heads(model).eval()  # the exporter restores the wrapper's mode afterwards: keep it eval
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python ints; check_graph and parity are the proof
        torch.onnx.export(wrapper, example_inputs(model), str(path), input_names=list(INPUTS),
                          output_names=list(HEADS), dynamic_axes=DYNAMIC_AXES, opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    check_graph(path)


def check_graph(path: Path) -> None:
    """Refuse a graph whose inputs/outputs are not the contract's, whose dynamic axes were frozen, or whose
    weights live in an external data file."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ExportError(f"{path} stores {len(external)} weights externally (e.g. {external[0]}); expected one file")
    got_in = [i.name for i in m.graph.input]
    got_out = [o.name for o in m.graph.output]
    if got_in != list(INPUTS) or got_out != list(HEADS):
        raise ExportError(f"graph inputs {got_in} / outputs {got_out} differ from {INPUTS} / {HEADS}")
    for value in list(m.graph.input) + list(m.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, name in DYNAMIC_AXES[value.name].items():
            if dims[axis].dim_param != name:
                raise ExportError(f"axis {axis} of {value.name} is {dims[axis].dim_value or dims[axis].dim_param!r}, "
                                  f"not the symbolic {name!r}: the tracer froze it")
