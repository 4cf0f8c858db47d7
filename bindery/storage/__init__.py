"""Storage lifecycle: each store kept under a byte budget (bindery/storage/keeper.py)."""
