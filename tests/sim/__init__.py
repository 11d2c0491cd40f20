"""The library against our simulators and other real peers (pymodbus, bacpypes3, Gurux, PTY pairs): end to end."""
