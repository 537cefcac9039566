"""Draw an image graph as inline SVG: a left-to-right tree laid out in Python, no script.

Each leaf takes a row; a parent sits level with the middle of its children. Edges are curves
from a parent to a child; a referrer hangs off its subject with a dashed edge whose arrow
points at the subject (``subject`` is the referrer's field). Every text goes through
:func:`~.markup.esc`; each node links to its page and carries its full media type and
digest in a tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass

from .inventory import GraphNode
from .markup import Safe, el, frag, human_size, short_digest, short_type

NODE_W = 330
NODE_H = 58
COL_GAP = 70
ROW_GAP = 12
PAD = 8


@dataclass
class Placed:
    node: GraphNode
    x: int
    y: int


def layout(root: GraphNode) -> tuple[list[Placed], list[tuple[Placed, Placed]], int, int]:
    """Positions of every node, the edges (parent, child), and the drawing's width and height."""
    placed: list[Placed] = []
    edges: list[tuple[Placed, Placed]] = []
    row = 0
    depth_max = 0

    def visit(node: GraphNode, depth: int) -> Placed:
        nonlocal row, depth_max
        depth_max = max(depth_max, depth)
        x = PAD + depth * (NODE_W + COL_GAP)
        kids = [visit(c, depth + 1) for c in node.children]
        if kids:
            y = (kids[0].y + kids[-1].y) // 2
        else:
            y = PAD + row * (NODE_H + ROW_GAP)
            row += 1
        p = Placed(node, x, y)
        placed.append(p)
        edges.extend((p, k) for k in kids)
        return p

    visit(root, 0)
    width = 2 * PAD + (depth_max + 1) * NODE_W + depth_max * COL_GAP
    height = 2 * PAD + max(row, 1) * (NODE_H + ROW_GAP) - ROW_GAP
    return placed, edges, width, height


def _edge(parent: Placed, child: Placed) -> Safe:
    x1, y1 = parent.x + NODE_W, parent.y + NODE_H // 2
    x2, y2 = child.x, child.y + NODE_H // 2
    mid = (x1 + x2) // 2
    d = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
    if child.node.edge == "subject":
        # drawn from the referrer back to its subject
        d = f"M{x2},{y2} C{mid},{y2} {mid},{y1} {x1},{y1}"
        return el("path", d=d, class_="edge subject", marker_end="url(#arrow)")
    return el("path", d=d, class_="edge")


def _node(p: Placed) -> Safe:
    n = p.node
    title = f"{n.kind}: {n.media_type}\n{n.digest}\n{n.size if n.size is not None else '?'} bytes"
    label = short_type(n.label) if n.kind == "referrer" else n.label
    head = n.kind if not label or label == n.kind else f"{n.kind} \u00b7 {label}"
    head = head if len(head) <= 44 else head[:43] + "\u2026"
    body = frag(
        el("title", title),
        el("rect", x=p.x, y=p.y, width=NODE_W, height=NODE_H, rx=6, class_=f"node {n.kind}"),
        el("text", head, x=p.x + 10, y=p.y + 17, class_="head"),
        el("text", short_type(n.media_type)[:50], x=p.x + 10, y=p.y + 34, class_="mtype"),
        el("text", f"{short_digest(n.digest)}  {human_size(n.size)}", x=p.x + 10, y=p.y + 50, class_="dig"),
    )
    return el("a", body, href=n.href, class_="gnode") if n.href else el("g", body, class_="gnode")


def render_svg(root: GraphNode) -> Safe:
    """The graph as an ``<svg>`` element (sized to its content; it scrolls inside its figure)."""
    placed, edges, width, height = layout(root)
    defs = el("defs", el("marker", el("path", d="M0,0 L10,5 L0,10 z", class_="arrowhead"), id="arrow",
                         viewBox="0 0 10 10", refX=10, refY=5, markerWidth=7, markerHeight=7, orient="auto"))
    return el("svg", defs, [_edge(a, b) for a, b in edges], [_node(p) for p in reversed(placed)],
              xmlns="http://www.w3.org/2000/svg", width=width, height=height,
              viewBox=f"0 0 {width} {height}", class_="graph", role="img",
              aria_label=f"graph of {root.kind} {root.digest}")
