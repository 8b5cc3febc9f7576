"""Self-MM (Yu et al., AAAI 2021): model, ULGM, trainer, metrics, MMSA data and the feature extractors.

Kept empty on purpose: `import selfmm.features` (used by the app) must not import torch.
"""
