"""Shims for third-party packages.

    torchvision  make `import torchvision` work on the CPU-only torch wheel
"""
