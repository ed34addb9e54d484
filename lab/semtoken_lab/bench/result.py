"""What one ``semtoken-rag bench`` run measured, section by section.

Its own module so that the targets (:mod:`semtoken_lab.bench.targets`), the markdown
(:mod:`semtoken_lab.bench.report_markdown`) and the files (:mod:`semtoken_lab.bench.report`)
all read one container without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from semtoken_lab.bench.compression_rows import CompressionReport
from semtoken_lab.bench.encoder import EncoderRow
from semtoken_lab.bench.endtoend import EndToEndRow
from semtoken_lab.bench.store import StoreReport


@dataclass
class BenchResult:
    """Everything one ``semtoken-rag bench`` run measured."""

    command: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    compression: CompressionReport | None = None
    store: StoreReport | None = None
    endtoend: list[EndToEndRow] = field(default_factory=list)
    reader: dict[str, Any] = field(default_factory=dict)
    encoder: list[EncoderRow] = field(default_factory=list)
    #: The benchmark device (:func:`semtoken_lab.bench.device.device_info`) and the weights.
    device: dict[str, Any] = field(default_factory=dict)
