"""edgekd: distil big video teachers into small students, export them, and measure them on the edge."""

__version__ = "0.1.0"
