"""Load for `bench/embedded_e2e.sh`: HTTP clients posting impression+play batches.

Usage: embedded_load.py HOST:PORT BATCHES CLIENTS PID PREFIX
Each client posts BATCHES batches of 250 impressions and their 250 plays (500 events),
retrying a batch after a 429; prints accepted events/s, 429s and the RSS of PID.
Standard library only.
"""

import http.client
import json
import sys
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def body(prefix, client, batch, now):
    events = []
    for i in range(250):
        rid = f"{prefix}-{client}-{batch}-{i}"
        video = 80100172 + i % 50
        events.append({"type": "impression", "event_id": "i" + rid, "request_id": rid, "member_id": "m",
                       "video_id": video, "canvas": "row", "country": "US", "device": "tv", "event_time": now})
        events.append({"type": "play", "event_id": "p" + rid, "request_id": rid, "member_id": "m",
                       "video_id": video, "country": "US", "device": "tv", "event_time": now + 1000,
                       "watch_seconds": 60})
    return json.dumps({"events": events}).encode()


def main():
    address, batches, clients, pid, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    host, port = address.rsplit(":", 1)
    now = int(time.time() * 1000)
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def run(client):
        conn = http.client.HTTPConnection(host, int(port))
        batch = 0
        while batch < batches:
            conn.request("POST", "/v1/events", body(prefix, client, batch, now), {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                batch += 1
                with lock:
                    counts["ok"] += 1
            elif response.status == 429:
                with lock:
                    counts["refused"] += 1
                time.sleep(0.01)
            else:
                raise RuntimeError(f"unexpected {response.status}")

    start = time.time()
    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        peak = max(peak, rss_mib(pid))
    elapsed = time.time() - start
    events = counts["ok"] * 500
    print(f"ingest: {events} events accepted in {elapsed:.1f} s = {events / elapsed:,.0f} events/s "
          f"({clients} clients, {counts['refused']} x 429); RSS peak {peak} MiB")


if __name__ == "__main__":
    main()
