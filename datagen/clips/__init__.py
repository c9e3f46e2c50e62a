"""The multi-view clip record and its provenance."""

from datagen.clips.clip import KEY_PATTERN, Clip, ClipValidationError
from datagen.clips.provenance import SOURCE_KINDS, Provenance

__all__ = ["KEY_PATTERN", "SOURCE_KINDS", "Clip", "ClipValidationError", "Provenance"]
