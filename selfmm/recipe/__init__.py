"""The default model's recipe: which data, split how, scored how, described how on the card.

`python -m scripts.build_default_model` runs it stage by stage; the probes and baselines reuse its pieces so that
every figure is measured on the same splits. Nothing here imports torch at module level (only inside functions),
and nothing imports `export`, `demo` or `scripts`.
"""
