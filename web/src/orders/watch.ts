// Follow GET /v1/orders/{id}:watch. The edge transcodes the server stream into
// newline-delimited JSON (one Order per line, first the order as it is), and ends the stream
// at its route timeout: the watcher reconnects until the caller stops it.
import { authFetch, type Order } from "../api/client";
import { problemFrom, type ApiProblem } from "../api/errors";

export function watchOrder(orderId: string, onOrder: (order: Order) => void, onProblem: (problem: ApiProblem | null) => void): () => void {
  const controller = new AbortController();
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const response = await authFetch(new Request(`/v1/orders/${encodeURIComponent(orderId)}:watch`, { signal: controller.signal }));
        if (!response.ok || !response.body) {
          const problem = problemFrom(response.status, await response.json().catch(() => ({})));
          onProblem(problem);
          if (response.status < 500 && response.status !== 429) return;
        } else {
          onProblem(null);
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffered = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffered += value;
            let newline = buffered.indexOf("\n");
            while (newline >= 0) {
              const line = buffered.slice(0, newline).trim();
              buffered = buffered.slice(newline + 1);
              if (line) onOrder(unwrap(JSON.parse(line)));
              newline = buffered.indexOf("\n");
            }
          }
        }
      } catch {
        if (stopped) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

// Some transcoders wrap each streamed message as {"result": ...}; accept both shapes.
function unwrap(value: unknown): Order {
  if (value && typeof value === "object" && "result" in value) return (value as { result: Order }).result;
  return value as Order;
}
