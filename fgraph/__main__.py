"""``python -m fgraph ...``: the ``fgraph`` command (what ``torchrun --nproc_per_node=N -m fgraph train ...`` runs)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
