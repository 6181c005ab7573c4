"""Signal backbones: a patch Transformer (PatchTST-style) and a dilated residual 1-D CNN."""
