"""Dataset sources: real loaders (IDX, TFDS, archives, OGB files) yielding host arrays."""
