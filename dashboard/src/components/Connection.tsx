import { parseFrame } from "../protocol";
import { useDashboard } from "../store";
import { useNow } from "../useNow";
import { type SocketClass, type SocketStatus, useReconnectingSocket } from "../useReconnectingSocket";

/** Seconds without a message after which the data is called stale (metrics come every second). */
export const STALE_AFTER_S = 5;

const LABELS: Record<SocketStatus, string> = {
  connecting: "connecting…",
  open: "connected",
  closed: "disconnected",
};

/** Owns the WebSocket: feeds frames to the store and shows connection status and staleness. */
export function Connection({ url, socketClass }: { url: string; socketClass?: SocketClass }) {
  const apply = useDashboard((s) => s.apply);
  const expectSnapshot = useDashboard((s) => s.expectSnapshot);
  const synced = useDashboard((s) => s.synced);
  const { status, lastMessageAt } = useReconnectingSocket({
    url,
    socketClass,
    onOpen: expectSnapshot,
    onMessage: (text) => {
      const frame = parseFrame(text);
      if (frame !== null) apply(frame);
    },
  });
  const now = useNow();
  const age = lastMessageAt === null ? null : Math.max(0, (now - lastMessageAt) / 1000);
  const stale = age === null || age > STALE_AFTER_S;

  return (
    <div className="connection">
      <span className={`badge badge-${status}`} data-testid="connection-status" data-status={status}>
        {LABELS[status]}
      </span>
      <span className={stale ? "staleness stale" : "staleness"} data-testid="staleness" data-stale={String(stale)}>
        {age === null ? "no message yet" : `last message ${Math.round(age)} s ago`}
        {status === "open" && !synced ? " · waiting for snapshot" : ""}
      </span>
    </div>
  );
}
