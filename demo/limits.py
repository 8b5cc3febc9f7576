"""What the app accepts, checked before any expensive work, with messages a person can act on.

The file size is checked from the file system before a byte is read; the format by extension (the decoder
then gives its own clear message for a file that lies about its extension); the length once decoded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class InputError(ValueError):
    """An input the app refuses; str(e) is the message shown to the person."""


VIDEO_FORMATS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
AUDIO_FORMATS = (".wav", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".flac", ".aac", ".weba")


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    min_seconds: float = 0.5
    max_seconds: float = 60.0
    max_text_chars: int = 1000


LIMITS = Limits()


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # unreachable


def media_kind(path: str | os.PathLike) -> str:
    """'video' or 'audio' by extension, or InputError naming the accepted formats."""
    ext = Path(path).suffix.lower()
    if ext in VIDEO_FORMATS:
        return "video"
    if ext in AUDIO_FORMATS:
        return "audio"
    shown = ext or "a file without extension"
    raise InputError(f"Unsupported format ({shown}). Use a video ({', '.join(VIDEO_FORMATS)}) "
                     f"or an audio file ({', '.join(AUDIO_FORMATS)}).")


def check_file(path: str | os.PathLike, limits: Limits = LIMITS) -> str:
    """Existence, size (from the file system, nothing read) and format; returns 'video' or 'audio'."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"File not found: {p.name}.")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"The file {p.name} is empty (0 bytes).")
    if size > limits.max_bytes:
        raise InputError(f"The file is too large ({human_bytes(size)}); the limit is "
                         f"{human_bytes(limits.max_bytes)}. Trim the clip to at most {limits.max_seconds:g} s.")
    return media_kind(p)


def check_duration(seconds: float, limits: Limits = LIMITS) -> None:
    if seconds < limits.min_seconds:
        raise InputError(f"The clip is too short ({seconds:.2f} s); record at least {limits.min_seconds:g} s.")
    if seconds > limits.max_seconds:
        raise InputError(f"The clip is too long ({seconds:.1f} s); the limit is {limits.max_seconds:g} s. "
                         f"Trim it or record a shorter one.")


def check_text(text: str, limits: Limits = LIMITS) -> str:
    """The stripped text, refusing text longer than the limit (the encoder reads only the first tokens anyway)."""
    text = (text or "").strip()
    if len(text) > limits.max_text_chars:
        raise InputError(f"The text is too long ({len(text)} characters); the limit is {limits.max_text_chars}.")
    return text
