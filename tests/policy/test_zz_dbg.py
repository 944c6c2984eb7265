import time
from sched_accel._policy import _line
from ..faultserver import FaultServer, answer
from .test_policy_faults import KEYS, install, run_line

def test_dbg(app, monkeypatch, capture_events):
    original = _line.Line.take_token
    def preempted(self, number=0):
        time.sleep(0.002)  # the thread loses the CPU here, as a loaded machine makes it
        return original(self, number)
    monkeypatch.setattr(_line.Line, "take_token", preempted)
    jobs, clients = install(app, monkeypatch, concurrency=4)
    with FaultServer(latency=0.03) as server:
        api = clients.HttpxApi(server.url)
        jobs.collect(KEYS[:20], api)
        api.close()
    print("\n", [l.split(" - ")[0] for l in capture_events if l.startswith("sched_accel.run ")])
