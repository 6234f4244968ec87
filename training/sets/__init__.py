"""Network-set handling: copying, exporting for shipping, assembling, recording accuracy."""
