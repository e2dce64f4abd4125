"""glassloop: PyTorch training loops you can see through."""
