import { useEffect, useRef, useState } from "react";

export type SocketStatus = "connecting" | "open" | "closed";

/** The part of the browser WebSocket this hook uses (so tests can inject a fake class). */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  close(): void;
}

export type SocketClass = new (url: string) => SocketLike;

export const MIN_DELAY_MS = 500;
export const MAX_DELAY_MS = 10_000;

/**
 * The wait before reconnect attempt `attempt` (0-based): the ceiling doubles from 0.5 s up to
 * 10 s, and the wait is drawn uniformly from [ceiling / 2, ceiling] so that many dashboards
 * dropped by one server restart do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt);
  return ceiling / 2 + (random() * ceiling) / 2;
}

export interface ReconnectOptions {
  url: string;
  onMessage: (text: string) => void;
  /** Called each time a connection opens (before its first message). */
  onOpen?: () => void;
  socketClass?: SocketClass;
  random?: () => number;
}

export interface SocketInfo {
  status: SocketStatus;
  /** Date.now() of the last message received, or null before the first. */
  lastMessageAt: number | null;
}

/**
 * Keep one WebSocket to `url` open: reconnect with capped, jittered exponential backoff after
 * every close, reset the backoff once a connection opens, and stop on unmount.
 */
export function useReconnectingSocket(options: ReconnectOptions): SocketInfo {
  const [status, setStatus] = useState<SocketStatus>("connecting");
  const [lastMessageAt, setLastMessageAt] = useState<number | null>(null);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  const { url } = options;

  useEffect(() => {
    let stopped = false;
    let attempt = 0;
    let socket: SocketLike | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const retry = () => {
      socket = null;
      setStatus("closed");
      timer = setTimeout(connect, backoffDelay(attempt, latest.current.random));
      attempt += 1;
    };

    function connect() {
      setStatus("connecting");
      const Socket = latest.current.socketClass ?? WebSocket;
      let ws: SocketLike;
      try {
        ws = new Socket(url);
      } catch {
        retry();
        return;
      }
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        setStatus("open");
        latest.current.onOpen?.();
      };
      ws.onmessage = (event) => {
        setLastMessageAt(Date.now());
        latest.current.onMessage(String(event.data));
      };
      ws.onclose = () => {
        if (!stopped) retry();
      };
    }

    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    };
  }, [url]);

  return { status, lastMessageAt };
}
