"""edgekd: distil big video teachers into small students, export them, and measure them on the edge.

Stages (subpackages) import only downward: cli -> distill, export, bench -> pretrain -> runtime,
teachers -> data -> students. checkpoint (the checkpoint.pt contract) sits on data and students.
Under them all: config (typed config), registry (string registries), errors (typed errors carrying
their fix), io (atomic file helpers), home (edgekd_home: where built data and teachers are cached),
report (the one reporter).
"""

__version__ = "0.1.0"
