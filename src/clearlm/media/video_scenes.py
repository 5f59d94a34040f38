"""A video's scenes: frames sampled at ``SAMPLE_FPS`` (decoded by FFmpeg through PyAV), each compared with the
one before it, a cut where they differ by more than ``THRESHOLD``, and one representative frame per scene
(the sample nearest its middle).

The difference is PySceneDetect's "content" measure (ContentDetector): the mean absolute difference of two
frames' hue, saturation and value, on 0-255, here on 96 x 54 thumbnails. A cut needs ``MIN_SCENE_S`` since
the last one (a flash is not a scene). A file that is not a video, has no video stream, or cannot be
decoded, or whose frames stop well before its declared end (cut off), is refused with
:class:`VideoInputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from clearlm.errors import InvalidInputError

SAMPLE_FPS = 4.0  # frames compared per second of video
THRESHOLD = 27.0  # PySceneDetect's default for its content detector (0-255)
MIN_SCENE_S = 1.0
THUMB = (96, 54)
FRAME_SIDE = 640  # a representative frame is kept at most this wide or high
KEPT_PER_SCENE = 16  # samples held per scene while it lasts (halved when full): memory stays bounded
TRUNCATED_BELOW = 0.9  # frames ending before this share of the declared duration: a cut-off file
MAX_SECONDS = 4 * 3600.0  # the longest video read (a 2-hour film is fine; progress is reported)

Progress = Callable[[float, float], None]  # (seconds of video done, seconds in all)


class VideoInputError(InvalidInputError):
    """A file that cannot be read as a video: not a video, no video stream, undecodable, too long."""

    code = "invalid_video"


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """``duration`` (s), ``width``/``height`` (pixels), ``fps``, ``codec`` of the video stream, ``audio``:
    whether it has an audio stream."""

    duration: float
    width: int
    height: int
    fps: float
    codec: str
    audio: bool


@dataclass(slots=True)
class Scene:
    """``start``/``end`` (s), ``frame_time`` (s: when ``frame`` was taken), ``frame`` (RGB, at most
    ``FRAME_SIDE`` a side), ``cut_score`` (the content difference that opened it; 0 for the first)."""

    start: float
    end: float
    frame_time: float
    frame: Image.Image
    cut_score: float = 0.0


def open_video(path: str | Path):
    """A PyAV container for ``path`` and its first video stream.

    Raises:
        VideoInputError: no such file, not a media file, no video stream.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"no file {str(path)!r}: give the path of a video (MP4, WebM, MKV, MOV)")
    if path.stat().st_size == 0:
        raise VideoInputError(f"{path.name} is empty (0 bytes): give a video file")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError:
        raise VideoInputError(
            f"{path.name} is not a video FFmpeg can read: give an MP4, WebM, MKV or MOV"
        ) from None
    videos = [s for s in container.streams if s.type == "video"]
    if not videos:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        container.close()
        raise VideoInputError(f"{path.name} has no video stream (streams: {kinds}): give a video file")
    return container, videos[0]


def probe(path: str | Path) -> VideoInfo:
    """``path``'s duration, frame size, frame rate, codec and whether it has sound (no frame decoded).

    Raises:
        VideoInputError: as :func:`open_video`, or longer than ``MAX_SECONDS``.
    """
    container, stream = open_video(path)
    with container:
        duration = _duration(container, stream)
        if duration > MAX_SECONDS:
            raise VideoInputError(
                f"{Path(path).name} lasts {duration / 3600:.1f} h; at most {MAX_SECONDS / 3600:g} h is read: "
                "split it first (ffmpeg -ss START -t LENGTH -c copy)"
            )
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        audio = any(s.type == "audio" for s in container.streams)
        ctx = stream.codec_context
        return VideoInfo(duration, ctx.width, ctx.height, rate, ctx.name, audio)


def detect_scenes(
    path: str | Path,
    *,
    sample_fps: float = SAMPLE_FPS,
    threshold: float = THRESHOLD,
    min_scene: float = MIN_SCENE_S,
    progress: Progress | None = None,
) -> list[Scene]:
    """The scenes of ``path`` in order (at least one), each with its representative frame.

    Raises:
        VideoInputError: as :func:`probe`, or a stream whose frames cannot be decoded (truncated file).
    """
    import av

    info = probe(path)
    container, stream = open_video(path)
    stream.thread_type = "AUTO"
    scenes: list[Scene] = []
    held: list[tuple[float, Image.Image]] = []
    start, cut_score, last_thumb, next_t, t = 0.0, 0.0, None, 0.0, 0.0

    def close_scene(end: float) -> None:
        if not held:
            return
        middle = (start + end) / 2
        at, frame = min(held, key=lambda h: abs(h[0] - middle))
        scenes.append(Scene(round(start, 3), round(end, 3), round(at, 3), frame, round(cut_score, 2)))

    decoded = 0
    try:
        with container:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = float(frame.time)
                decoded += 1
                if t + 1e-6 < next_t:
                    continue
                next_t = t + 1.0 / sample_fps
                thumb = np.asarray(frame.to_image().resize(THUMB).convert("HSV"), dtype=np.float32)
                if last_thumb is not None:
                    score = float(np.abs(thumb - last_thumb).mean())
                    if score > threshold and t - start >= min_scene:
                        close_scene(t)
                        start, cut_score, held = t, score, []
                last_thumb = thumb
                held.append((t, _small(frame.to_image())))
                if len(held) > KEPT_PER_SCENE:
                    held = held[::2]
                if progress is not None:
                    progress(min(t, info.duration), info.duration)
    except av.error.FFmpegError as exc:
        if decoded == 0:
            raise VideoInputError(
                f"{Path(path).name}'s {info.codec} video cannot be decoded ({exc.__class__.__name__}): "
                "convert it to H.264 MP4"
            ) from None
    if decoded == 0:
        raise VideoInputError(f"{Path(path).name} holds no video frames: it is empty or cut off")
    if t < TRUNCATED_BELOW * info.duration - 1.0:
        raise VideoInputError(
            f"{Path(path).name} is truncated: it declares {info.duration:.1f} s of video but its frames stop "
            f"at {t:.1f} s; send the whole file"
        )
    close_scene(max(t, info.duration))
    if progress is not None:
        progress(info.duration, info.duration)
    return scenes


def _small(image: Image.Image) -> Image.Image:
    scale = FRAME_SIDE / max(image.size)
    if scale >= 1:
        return image.convert("RGB")
    return image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0
