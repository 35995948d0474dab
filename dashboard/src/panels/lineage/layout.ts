import dagre from "@dagrejs/dagre";
import type { LineageEdge, LineageNode } from "../../protocol";

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 58;

export interface Placed {
  node: LineageNode;
  /** Top-left corner, as React Flow positions nodes. */
  x: number;
  y: number;
}

/** Left-to-right dagre layout; edges naming a node that is not listed are dropped. */
export function layoutLineage(nodes: readonly LineageNode[], edges: readonly LineageEdge[]): { placed: Placed[]; edges: LineageEdge[] } {
  const ids = new Set(nodes.map((n) => n.id));
  const kept = edges.filter((e) => ids.has(e.source) && ids.has(e.target));
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of kept) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const placed = nodes.map((node) => {
    const { x, y } = g.node(node.id);
    return { node, x: x - NODE_WIDTH / 2, y: y - NODE_HEIGHT / 2 };
  });
  return { placed, edges: kept };
}
