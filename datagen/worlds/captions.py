"""Captions per zoom level, derived deterministically from the scene graph."""

from __future__ import annotations

from datagen.worlds.scene_graph import NUM_LEVELS, SceneNode


def level_captions(graph: SceneNode, levels: int = NUM_LEVELS) -> list[str]:
    """``levels`` captions along the canonical zoom path (``SceneNode.zoom_path``).

    Level k is the caption of the path node at level k; a level the path skips repeats the
    caption of the next coarser node, so the list is always full.
    """
    by_level = {node.level: node.caption for node in graph.zoom_path()}
    out, last = [], graph.caption
    for k in range(levels):
        last = by_level.get(k, last)
        out.append(last)
    return out


def captions_by_level(graph: SceneNode, levels: int = NUM_LEVELS) -> list[list[str]]:
    """All distinct captions of the graph grouped by level (depth-first order)."""
    out: list[list[str]] = [[] for _ in range(levels)]
    for node in graph.walk():
        if node.level < levels and node.caption not in out[node.level]:
            out[node.level].append(node.caption)
    return out
