"""The graph drawing: layout of the tree, and SVG with nothing executable in it."""

from __future__ import annotations

from ocikit.server.ui.graphsvg import NODE_H, layout, render_svg
from ocikit.server.ui.inventory import GraphNode

PROBE = '<script>alert(1)</script>"onerror="x\' &amp;'


def test_graph_layout_and_svg():
    leaf = [GraphNode("config", "c", "sha256:" + "1" * 64, 10), GraphNode("layer", "l", "sha256:" + "2" * 64, 20)]
    child = GraphNode("manifest", "m", "sha256:" + "3" * 64, 30, "linux/amd64", children=leaf)
    ref = GraphNode("referrer", "m", "sha256:" + "4" * 64, 5, PROBE, edge="subject")
    root = GraphNode("index", "i", "sha256:" + "5" * 64, 40, children=[child, ref])
    placed, edges, width, height = layout(root)
    by = {p.node.kind: p for p in placed}
    assert len(edges) == 4 and by["index"].x < by["manifest"].x < by["config"].x
    assert by["manifest"].y == (by["config"].y + by["layer"].y) // 2  # a parent sits level with its children
    assert height >= 3 * NODE_H
    svg = render_svg(root)
    assert svg.count("<rect") == 5 and 'marker-end="url(#arrow)"' in svg and "<script" not in svg
