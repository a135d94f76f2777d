"""Media processing: formats, inspection, rendering and the decode budget.

The rendition service (``storage.media.renditions``) is imported from its module: it works
over the blob stores, whose keys are built from the formats here, so re-exporting it would
make ``storage.blobs`` and ``storage.media`` import each other."""

from storage.media.formats import BY_EXTENSION, FORMATS, RENDITION_OUTPUTS, MediaFormat
from storage.media.inspection import ImageInfo, VideoInfo, inspect_image, inspect_video
from storage.media.memory import DECODES, DEFAULT_DECODE_PIXELS
from storage.media.rendering import DEFAULT_BOXES, plan, render

__all__ = [
    "BY_EXTENSION",
    "DECODES",
    "DEFAULT_BOXES",
    "DEFAULT_DECODE_PIXELS",
    "FORMATS",
    "RENDITION_OUTPUTS",
    "ImageInfo",
    "MediaFormat",
    "VideoInfo",
    "inspect_image",
    "inspect_video",
    "plan",
    "render",
]
