"""The FSDP training core: runs under torchrun on GPU nodes and on CPU with gloo in tests."""
