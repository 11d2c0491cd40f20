"""A software null-modem cable: two linked pseudo-terminals made by socat.

The simulator's serial server opens one end, a client (the integration, a
test) the other, so serial RTU is tested through a real tty without hardware.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

SOCAT = "socat"


class PtyPair:
    """``async with PtyPair() as pair``: ``pair.meter_end`` and ``pair.client_end`` are tty paths."""

    def __init__(self, directory: str | Path | None = None, *, timeout: float = 5.0) -> None:
        self._directory = Path(directory) if directory is not None else None
        self._timeout = timeout
        self._made_directory: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.meter_end = Path()
        self.client_end = Path()

    async def start(self) -> None:
        if shutil.which(SOCAT) is None:
            raise RuntimeError("socat is not installed (apt-get install socat)")
        folder = self._directory
        if folder is None:
            folder = self._made_directory = Path(tempfile.mkdtemp(prefix="submeter-pty-"))
        if any(c in str(folder) for c in ",:!"):
            raise ValueError(f"socat cannot take {folder} as a link path (contains , : or !)")
        self.meter_end, self.client_end = folder / "meter", folder / "client"
        for stale in (self.meter_end, self.client_end):  # left by a killed run: would look ready at once
            if stale.is_symlink():
                stale.unlink()
        self._process = await asyncio.create_subprocess_exec(
            SOCAT,
            f"pty,raw,echo=0,link={self.meter_end}",
            f"pty,raw,echo=0,link={self.client_end}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        deadline = asyncio.get_running_loop().time() + self._timeout
        while not (self.meter_end.exists() and self.client_end.exists()):
            if self._process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                message = await self._end()
                await self.stop()
                raise RuntimeError(f"socat did not create the pty pair: {message or 'timeout'}")
            await asyncio.sleep(0.01)

    async def _end(self) -> str:
        """Stop socat if it still runs; its error output, if any."""
        process, self._process = self._process, None
        if process is None:
            return ""
        if process.returncode is None:
            process.terminate()
        try:
            _, err = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
        return err.decode(errors="replace").strip()

    async def stop(self) -> None:
        await self._end()
        if self._made_directory is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._made_directory)
            self._made_directory = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
