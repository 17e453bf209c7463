"""Which implementation a custom op runs on each device type: its PyTorch reference, or a compiled kernel that a
host (``plugins/torch`` on CUDA, a test) routes to. One table per op (``mdcn``, ``ras``, ``patch_match``)."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional


class KernelTable:
    def __init__(self, reference: Callable):
        self.reference = reference
        self._by_device: dict[str, Callable] = {}

    def kernel(self, device_type: str) -> Callable:
        """What the op runs for tensors on ``device_type``."""
        return self._by_device.get(device_type, self.reference)

    def use(self, device_type: str, fn: Optional[Callable]) -> None:
        """Route the op on ``device_type`` ("cpu", "cuda") to ``fn`` (same arguments and results as the op), or
        back to the reference with ``fn=None``."""
        if fn is None:
            self._by_device.pop(device_type, None)
        else:
            self._by_device[device_type] = fn

    def registered(self, device_type: str) -> Optional[Callable]:
        """The kernel routed to on ``device_type``, or None (the reference runs)."""
        return self._by_device.get(device_type)

    @contextlib.contextmanager
    def using(self, device_type: str, fn: Optional[Callable]) -> Iterator[None]:
        """``use(device_type, fn)`` within the block; the previous routing is restored afterwards."""
        saved = self.registered(device_type)
        self.use(device_type, fn)
        try:
            yield
        finally:
            self.use(device_type, saved)
