"""Judge throughput: 805 AlpacaEval-style judgments against a loopback server that answers after 200 ms.

Compares one request at a time with the judge client's bounded concurrency and prints the speed-up
(the target is >= 20x). The sequential rate is measured on a subset (--sequential-n, default 50) and
scaled to 805 requests unless --full is given, since a full sequential pass takes about 161 s.

    python benchmarks/bench_judge_concurrency.py [--concurrency 64] [--full]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openrlhf_cfpo.eval.judge import Judge, JudgeConfig

N_JUDGMENTS = 805  # the size of the AlpacaEval set


def serve(delay_s: float, port_queue) -> None:
    """The fake endpoint, run in its own process as a real one would be (no GIL shared with the client)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API endpoint offers
        disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms per response and flatter the ratio

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay_s)
            top = [{"token": "M", "logprob": -0.1, "bytes": None}, {"token": "m", "logprob": -2.4, "bytes": None}]
            body = json.dumps(
                {
                    "id": "b",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "judge",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "length",
                            "message": {"role": "assistant", "content": "M"},
                            "logprobs": {
                                "content": [{"token": "M", "logprob": -0.1, "bytes": None, "top_logprobs": top}]
                            },
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer.request_queue_size = 1024
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def requests(n: int, tag: str) -> list[dict]:
    # AlpacaEval's weighted annotator asks for one token with its top logprobs.
    return [
        {
            "messages": [{"role": "user", "content": f"{tag} instruction {i}: which output is better?"}],
            "max_tokens": 1,
            "temperature": 1,
            "logprobs": True,
            "top_logprobs": 5,
        }
        for i in range(n)
    ]


def timed(url: str, concurrency: int, reqs: list[dict]) -> float:
    judge = Judge(JudgeConfig("judge", url, "bench", concurrency=concurrency, cache_path=None))
    start = time.perf_counter()
    judge.complete_many(reqs, desc=f"concurrency {concurrency}")
    assert judge.calls == len(reqs)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--delay", type=float, default=0.2)
    p.add_argument("--sequential-n", type=int, default=50)
    p.add_argument("--full", action="store_true", help="run all 805 requests sequentially too")
    a = p.parse_args()
    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(a.delay, ports), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
    n_seq = N_JUDGMENTS if a.full else a.sequential_n
    t_seq = timed(url, 1, requests(n_seq, "seq"))
    t_seq_805 = t_seq * N_JUDGMENTS / n_seq
    t_conc = timed(url, a.concurrency, requests(N_JUDGMENTS, "conc"))
    server.terminate()
    print(
        f"sequential: {n_seq} requests in {t_seq:.2f} s ({t_seq / n_seq * 1000:.0f} ms each)"
        + ("" if a.full else f" -> {t_seq_805:.1f} s for {N_JUDGMENTS} (scaled)")
    )
    print(f"concurrency {a.concurrency}: {N_JUDGMENTS} requests in {t_conc:.2f} s")
    ratio = t_seq_805 / t_conc
    print(f"speed-up: {ratio:.1f}x (target >= 20x) {'PASS' if ratio >= 20 else 'FAIL'}")


if __name__ == "__main__":
    main()
