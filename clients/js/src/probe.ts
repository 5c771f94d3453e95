// Why a WebSocket did not open. Neither browsers nor Node expose the HTTP
// status of a refused upgrade, yet a 401/403 must stop the client instead of
// looping (SPEC §3: the auth plugin refuses before the upgrade). This asks
// again, once, in a way that shows the status.

/**
 * The HTTP status the gateway answers the same upgrade with, or undefined when
 * it cannot be learnt (network error, or no way to ask).
 *
 * - Node: a real upgrade request through `node:http`/`node:https` (loaded on
 *   demand, so bundles for browsers never include it); a 101 is closed at once.
 * - Browsers: `GET /sse` with the token (same auth as `/ws`, SPEC §4), whose
 *   401/403 the page can read.
 */
export async function probeStatus(wsUrl: string, token: string | undefined): Promise<number | undefined> {
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  try {
    return node ? await probeNode(wsUrl, token) : await probeFetch(wsUrl, token);
  } catch {
    return undefined;
  }
}

async function probeNode(wsUrl: string, token: string | undefined): Promise<number | undefined> {
  const url = new URL(wsUrl);
  const secure = url.protocol === "wss:";
  const spec = secure ? "node:https" : "node:http";
  // Typed loosely: the package carries no Node type definitions.
  const http = (await import(/* @vite-ignore */ spec)) as {
    request: (url: string, options: object) => NodeRequest;
  };
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const headers: Record<string, string> = {
    Connection: "Upgrade",
    Upgrade: "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": key,
  };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  url.protocol = secure ? "https:" : "http:";
  return await new Promise<number | undefined>((resolve) => {
    const request = http.request(url.toString(), { method: "GET", headers, timeout: 5000 });
    request.on("response", (response: { statusCode?: number; resume: () => void }) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on("upgrade", (_response: unknown, socket: { destroy: () => void }) => {
      socket.destroy();
      resolve(101);
    });
    request.on("timeout", () => {
      request.destroy();
      resolve(undefined);
    });
    request.on("error", () => resolve(undefined));
    request.end();
  });
}

interface NodeRequest {
  on(event: string, listener: (...args: never[]) => void): void;
  destroy(): void;
  end(): void;
}

async function probeFetch(wsUrl: string, token: string | undefined): Promise<number | undefined> {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/\/ws$/, "/sse");
  if (token !== undefined) url.searchParams.set("token", token);
  const response = await fetch(url.toString(), { method: "GET" });
  const status = response.status;
  await response.body?.cancel();
  return status;
}
