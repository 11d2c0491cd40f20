"""Library tests: the pure library alone, no Home Assistant and no simulator on a socket."""
