"""corral: a Procfile runner that is also a correct PID 1."""

__version__ = "0.1.0"
