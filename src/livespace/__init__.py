"""livespace: a real-time collaboration server for shared contact workspaces."""

__version__ = "0.1.0"
