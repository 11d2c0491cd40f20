"""The registry of bus kinds: one description per kind, asked by the set-up, the flows and the platforms.

``kind.py`` says what a description holds, one module per protocol describes
its kinds, ``registry.py`` registers them.
"""
