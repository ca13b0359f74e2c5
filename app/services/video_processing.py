"""Video, animated GIFs and audio through Debian's ffmpeg: probed, checked against an allowlist,
re-encoded to what every browser and app plays (H.264/AAC MP4 with faststart, MP3), with a
poster frame for videos.

The commands are fixed argument lists; the only thing that varies is the input path, which is a
file we named ourselves (never a name from the upload), and the demuxer, which comes from our
allowlist. `-protocol_whitelist file` keeps ffmpeg from opening anything but local files, so a
playlist that names a URL or another file cannot make it read one. Everything here blocks:
callers run it in a thread or the worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.services.image_processing import MediaInvalid, ProcessedImage, process_image

# Mastodon 4.5's limits.
VIDEO_SIZE_LIMIT = 99 * 1024 * 1024
VIDEO_MATRIX_LIMIT = 8_294_400
VIDEO_FRAME_RATE_LIMIT = 120
# Longer files are refused rather than cut (a cut would silently drop what the author meant).
MAX_DURATION_SECONDS = 20 * 60
# Output: fits in 1920x1920 and about 2.5 Mbit/s of video, as Mastodon keeps uploads watchable.
MAX_VIDEO_EDGE = 1920
VIDEO_MAX_RATE = "2500k"
AUDIO_BITRATE = "128k"
FFMPEG_TIMEOUT = 600

# ffprobe's format names → the demuxer given back to ffmpeg with -f (so it never guesses again).
CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mov",
    "matroska,webm": "matroska",
    "ogg": "ogg",
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "gif": "gif",
    "aac": "aac",
}
# The demuxers ffprobe and ffmpeg may use at all: a playlist (HLS, concat) that names other files
# is not even opened.
DEMUXERS = ",".join(sorted(set(CONTAINERS.values())))
VIDEO_CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "gif", "theora"}
AUDIO_CODECS = {"aac", "mp3", "opus", "vorbis", "flac", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"}
# Streams that carry no picture or sound: cover art in MP3s is "mjpeg"/"png" as a video stream.
STILL_CODECS = {"mjpeg", "png"}

VIDEO_TYPES = ["video/mp4", "video/quicktime", "video/webm", "image/gif"]
AUDIO_TYPES = ["audio/mpeg", "audio/mp4", "audio/ogg", "audio/wav", "audio/flac", "audio/aac", "audio/webm"]


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


@dataclass
class ProcessedMedia:
    """A re-encoded video or audio file (ours, in a scratch folder) and what `meta` says of it."""

    kind: str
    path: Path
    extension: str
    content_type: str
    meta: dict[str, Any]
    poster: ProcessedImage | None = None
    width: int | None = None
    height: int | None = None
    scratch: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def cleanup(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def looks_like_audio_or_video(head: bytes) -> bool:
    """A cheap look at the first bytes before ffprobe is asked (MP4/MOV, WebM/MKV, Ogg, MP3, WAV, FLAC)."""
    return (
        head[4:8] == b"ftyp"
        or head.startswith(b"\x1a\x45\xdf\xa3")
        or head.startswith(b"OggS")
        or head.startswith(b"ID3")
        or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1", b"\xff\xf9")
        or (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or head.startswith(b"fLaC")
    )


def _run(arguments: list[str], timeout: int = FFMPEG_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            arguments, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise MediaInvalid("the file took too long to process") from None


def probe(path: Path) -> dict[str, Any]:
    result = _run(
        [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            DEMUXERS,
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        timeout=60,
    )
    if result.returncode != 0:
        raise MediaInvalid("the file is damaged or not a video or audio file this server can read")
    try:
        found = json.loads(result.stdout)
    except ValueError:
        raise MediaInvalid("the file could not be read as video or audio") from None
    return found if isinstance(found, dict) else {}


def _rate(value: Any) -> float:
    try:
        numerator, _, denominator = str(value).partition("/")
        return float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def checked_streams(info: dict[str, Any]) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None, float]:
    """The demuxer, the first video and audio streams, and the duration, or MediaInvalid."""
    container = CONTAINERS.get(str(info.get("format", {}).get("format_name", "")))
    if container is None:
        raise MediaInvalid("this kind of video or audio file is not accepted (use MP4, WebM, MOV, MP3, Ogg)")
    streams = [s for s in info.get("streams", []) if isinstance(s, dict)]
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and s.get("codec_name") not in STILL_CODECS
            and not s.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise MediaInvalid("the file has neither a picture nor sound")
    if video is not None and video.get("codec_name") not in VIDEO_CODECS:
        raise MediaInvalid(f"the video codec {video.get('codec_name')!r} is not accepted")
    if audio is not None and audio.get("codec_name") not in AUDIO_CODECS:
        raise MediaInvalid(f"the audio codec {audio.get('codec_name')!r} is not accepted")
    if video is not None:
        width, height = int(video.get("width") or 0), int(video.get("height") or 0)
        if width < 1 or height < 1:
            raise MediaInvalid("the video has no picture size")
        if width * height > VIDEO_MATRIX_LIMIT:
            raise MediaInvalid(f"the video is {width}x{height}; the limit is 3840x2160's pixels")
        if _rate(video.get("avg_frame_rate")) > VIDEO_FRAME_RATE_LIMIT:
            raise MediaInvalid(f"the video has more than {VIDEO_FRAME_RATE_LIMIT} frames per second")
    try:
        duration = float(info.get("format", {}).get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration > MAX_DURATION_SECONDS:
        raise MediaInvalid(f"the file is longer than {MAX_DURATION_SECONDS // 60} minutes")
    return container, video, audio, duration


def _ffmpeg(arguments: list[str]) -> None:
    guards = ["-protocol_whitelist", "file", "-format_whitelist", DEMUXERS]
    result = _run(["ffmpeg", "-nostdin", "-y", "-v", "error", *guards, *arguments])
    if result.returncode != 0:
        raise MediaInvalid("the file could not be converted; it may be damaged")


def _duration_meta(duration: float) -> dict[str, Any]:
    return {"length": _clock(duration), "duration": round(duration, 2)}


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{int((seconds - whole) * 100):02d}"


def process_av(path: Path) -> ProcessedMedia:
    """Probe `path` (our own file) and convert it: a video (or animated GIF) to MP4, audio to MP3."""
    container, video, audio, duration = checked_streams(probe(path))
    scratch = Path(tempfile.mkdtemp(prefix="herold-media-", dir=path.parent))
    try:
        if video is None:
            output = scratch / "audio.mp3"
            _ffmpeg(
                [
                    "-f",
                    container,
                    "-i",
                    str(path),
                    "-map",
                    "0:a:0",
                    "-vn",
                    "-map_metadata",
                    "-1",
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    "192k",
                    "-t",
                    str(MAX_DURATION_SECONDS),
                    str(output),
                ]
            )
            sound: dict[str, Any] = {**_duration_meta(duration), "original": _duration_meta(duration)}
            return ProcessedMedia("audio", output, "mp3", "audio/mpeg", sound, scratch=scratch)
        gifv = container == "gif"
        output = scratch / "video.mp4"
        scale = (
            f"scale='min({MAX_VIDEO_EDGE},iw)':'min({MAX_VIDEO_EDGE},ih)':force_original_aspect_ratio=decrease,"
            "scale=trunc(iw/2)*2:trunc(ih/2)*2"
        )
        arguments = ["-f", container, "-i", str(path), "-map", "0:v:0"]
        if audio is not None and not gifv:
            arguments += ["-map", "0:a:0", "-c:a", "aac", "-b:a", AUDIO_BITRATE]
        else:
            arguments += ["-an"]
        arguments += [
            "-map_metadata",
            "-1",
            "-vf",
            scale,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-maxrate",
            VIDEO_MAX_RATE,
            "-bufsize",
            "5000k",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-t",
            str(MAX_DURATION_SECONDS),
            str(output),
        ]
        _ffmpeg(arguments)
        if output.stat().st_size > VIDEO_SIZE_LIMIT:
            raise MediaInvalid("the converted video is over 99 MB; upload a shorter one")
        poster_file = scratch / "poster.png"
        _ffmpeg(
            [
                "-f",
                "mov",
                "-ss",
                str(min(1.0, duration / 2)),
                "-i",
                str(output),
                "-frames:v",
                "1",
                "-f",
                "image2",
                "-c:v",
                "png",
                str(poster_file),
            ]
        )
        poster = process_image(poster_file.read_bytes()) if poster_file.exists() else None
        out_info = probe(output)
        out_video = next(s for s in out_info.get("streams", []) if s.get("codec_type") == "video")
        width, height = int(out_video["width"]), int(out_video["height"])
        frame_rate = str(out_video.get("avg_frame_rate") or "0/1")
        original = {
            "width": width,
            "height": height,
            "frame_rate": frame_rate,
            **_duration_meta(duration),
        }
        meta: dict[str, Any] = {
            **_duration_meta(duration),
            "width": width,
            "height": height,
            "size": f"{width}x{height}",
            "aspect": round(width / height, 6),
            "fps": round(_rate(frame_rate)),
            "original": original,
        }
        if poster is not None:
            meta["small"] = poster.meta["small"]
        kind = "gifv" if gifv else "video"
        return ProcessedMedia(kind, output, "mp4", "video/mp4", meta, poster, width, height, scratch=scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


__all__ = [
    "AUDIO_TYPES",
    "VIDEO_SIZE_LIMIT",
    "VIDEO_TYPES",
    "ProcessedMedia",
    "ffmpeg_available",
    "looks_like_audio_or_video",
    "process_av",
]
