import type { LoopState } from "../../protocol";

const W = 124;
const H = 36;

/** Where each state's box sits (top-left corner), left to right along the loop. */
const POSITION: Record<LoopState, { x: number; y: number }> = {
  IDLE: { x: 10, y: 110 },
  SNAPSHOTTING: { x: 164, y: 110 },
  TRAINING: { x: 318, y: 110 },
  EVALUATING: { x: 472, y: 110 },
  SHADOWING: { x: 626, y: 110 },
  PROMOTED: { x: 780, y: 50 },
  REJECTED: { x: 780, y: 170 },
  COOLDOWN: { x: 934, y: 110 },
  FAILED: { x: 472, y: 10 },
};

const FLOW: [LoopState, LoopState][] = [
  ["IDLE", "SNAPSHOTTING"],
  ["SNAPSHOTTING", "TRAINING"],
  ["TRAINING", "EVALUATING"],
  ["EVALUATING", "SHADOWING"],
  ["SHADOWING", "PROMOTED"],
  ["SHADOWING", "REJECTED"],
  ["PROMOTED", "COOLDOWN"],
  ["REJECTED", "COOLDOWN"],
];

/** The working steps that can fail. */
const FALLIBLE: LoopState[] = ["SNAPSHOTTING", "TRAINING", "EVALUATING", "SHADOWING"];

const right = (s: LoopState) => ({ x: POSITION[s].x + W, y: POSITION[s].y + H / 2 });
const left = (s: LoopState) => ({ x: POSITION[s].x, y: POSITION[s].y + H / 2 });

function flowPath(from: LoopState, to: LoopState): string {
  const a = right(from);
  const b = left(to);
  const mid = (a.x + b.x) / 2;
  return `M ${a.x} ${a.y} C ${mid} ${a.y}, ${mid} ${b.y}, ${b.x} ${b.y}`;
}

function failPath(from: LoopState): string {
  const a = { x: POSITION[from].x + W / 2, y: POSITION[from].y };
  const b = { x: POSITION.FAILED.x + W / 2, y: POSITION.FAILED.y + H };
  return `M ${a.x} ${a.y} L ${b.x} ${b.y}`;
}

/** COOLDOWN back to IDLE, under the whole row. */
function returnPath(): string {
  const from = { x: POSITION.COOLDOWN.x + W / 2, y: POSITION.COOLDOWN.y + H };
  const to = { x: POSITION.IDLE.x + W / 2, y: POSITION.IDLE.y + H };
  const floor = 240;
  return `M ${from.x} ${from.y} L ${from.x} ${floor} L ${to.x} ${floor} L ${to.x} ${to.y}`;
}

/** The retraining state machine with the live state highlighted. */
export function StateDiagram({ active }: { active: LoopState | null }) {
  return (
    <svg className="state-diagram" viewBox="0 0 1070 250" width="100%" role="img" aria-label="retraining state machine" data-testid="state-diagram">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" className="arrow-head" />
        </marker>
      </defs>
      {FLOW.map(([from, to]) => (
        <path key={`${from}-${to}`} d={flowPath(from, to)} className="edge" markerEnd="url(#arrow)" />
      ))}
      {FALLIBLE.map((from) => (
        <path key={`${from}-FAILED`} d={failPath(from)} className="edge edge-fail" markerEnd="url(#arrow)" />
      ))}
      <path d={returnPath()} className="edge" markerEnd="url(#arrow)" />
      {(Object.keys(POSITION) as LoopState[]).map((state) => {
        const { x, y } = POSITION[state];
        const on = state === active;
        return (
          <g key={state} data-state={state} data-active={String(on)} className={on ? "state active" : "state"}>
            <rect x={x} y={y} width={W} height={H} rx={8} />
            <text x={x + W / 2} y={y + H / 2} dominantBaseline="central" textAnchor="middle">
              {state}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
