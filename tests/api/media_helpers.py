"""Pictures made on the spot for the media tests (no binary fixtures in the repository)."""

from __future__ import annotations

import asyncio
import io
import random
import subprocess
from pathlib import Path

import httpx
from PIL import Image

from app.services.media_store import S3MediaStore, media_root
from tests.lab import Instance

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(size: tuple[int, int] = (64, 32), *, orientation: int = 6) -> bytes:
    """A JPEG carrying a GPS position, a camera serial and an orientation (6: rotate 90° to show)."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    output = io.BytesIO()
    image.save(output, "JPEG", exif=exif.tobytes(), quality=90)
    return output.getvalue()


def png_bytes(size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    output = io.BytesIO()
    Image.new("RGB", size, color).save(output, "PNG")
    return output.getvalue()


def noisy_png(size: tuple[int, int]) -> bytes:
    """A PNG that does not compress: about 3 bytes per pixel on disk."""
    generator = random.Random(7)
    image = Image.frombytes("RGB", size, generator.randbytes(size[0] * size[1] * 3))
    output = io.BytesIO()
    image.save(output, "PNG", compress_level=1)
    return output.getvalue()


def bomb_png() -> bytes:
    """A few kilobytes that would decode into 400 megapixels."""
    output = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(output, "PNG")
    return output.getvalue()


def animated_gif(frames: int = 6) -> bytes:
    images = [Image.new("RGB", (32, 24), (frame * 40 % 255, 80, 160)) for frame in range(frames)]
    output = io.BytesIO()
    images[0].save(output, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return output.getvalue()


def tiny_mp4(directory: Path, *, seconds: int = 1, audio: bool = False) -> bytes:
    """A small H.264 clip made by ffmpeg's test source (the caller skips without ffmpeg)."""
    target = directory / "clip.mp4"
    sources = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={seconds}"]
    if audio:
        sources += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *sources,
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-shortest",
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


def tiny_audio(directory: Path) -> bytes:
    target = directory / "sound.ogg"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:a",
            "libvorbis",
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


async def fetch_media(instance: Instance, url: str) -> httpx.Response:
    """GET a media URL as a browser would: from the instance itself, or from the object store's
    public address."""
    if url.startswith(instance.base_url + "/"):
        return await instance.client.get(url.removeprefix(instance.base_url))
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def stored_files(instance: Instance) -> list[str]:
    """Every file the instance keeps: in its store (disk or bucket) and in the local scratch folder."""
    root = media_root(instance.settings)
    found = (
        [str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()] if root.is_dir() else []
    )
    store = instance.context.media
    if isinstance(store, S3MediaStore):

        def listed() -> list[str]:
            pages = store.client().get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

        found += await asyncio.to_thread(listed)
    return sorted(found)
