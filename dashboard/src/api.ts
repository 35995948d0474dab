import { useState } from "react";
import type { ErrorResponse, RetrainAnswer, TrafficRequest } from "./protocol";

/** A failed admin call, carrying the server's own message (its ErrorResponse). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null,
  ) {
    super(message);
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as Partial<ErrorResponse>;
    const { message, field } = body.error ?? {};
    if (typeof message === "string") {
      return new ApiError(response.status, message, typeof field === "string" ? field : null);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  return new ApiError(response.status, `${response.status} ${response.statusText}`.trim(), null);
}

export async function adminRequest<T>(method: "POST" | "PUT", path: string, body: object, token: string): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorFrom(response);
  const text = await response.text();
  return (text === "" ? null : JSON.parse(text)) as T;
}

export const admin = {
  setTraffic: (token: string, traffic: TrafficRequest) =>
    adminRequest<unknown>("PUT", "/api/traffic", traffic, token),
  promote: (token: string, version: number, reason: string) =>
    adminRequest<unknown>("POST", `/api/models/${version}/promote`, { reason }, token),
  rollback: (token: string, reason: string) => adminRequest<unknown>("POST", "/api/rollback", { reason }, token),
  retrain: (token: string, reason: string) =>
    adminRequest<RetrainAnswer>("POST", "/api/retrain", { reason }, token),
};

export const TOKEN_KEY = "driftloop.adminToken";

/** The admin token, kept in sessionStorage (gone when the tab closes). */
export function useAdminToken(): [string, (token: string) => void] {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY) ?? "");
  const update = (next: string) => {
    if (next === "") sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, next);
    setToken(next);
  };
  return [token, update];
}
