"""A process with more distinct tag strings than dynoprof caches per process
(4,096; libdynotag holds up to 16,384): a thread tag whose value lies past the
cache must not free the strings of the sample's other labels (it emptied the
cache, a use-after-free the sanitizer build reports: `make sanitize-test`).
The label past the cache is dropped and counted; the others stay exact."""
import json

from agentutil import APP_PYTHON
from test_hostile import SECONDS, env_with, record, samples_of
from pyutil import decode_pprof

# Interns `early` first (a low string id), then 5,000 more values, then sets a
# thread tag to one of the last (an id past dynoprof's per-process cache) and
# burns CPU with both tags set. Writes {"pid", "cpu_s"} to argv[2].
MANY_STRINGS = r'''
import json, os, sys, time
import dynotag
dynotag.set("a", "early")
for i in range(5000):
    dynotag.set("bulk", "bulk-%d" % i)
dynotag.clear("bulk")
dynotag.set("z", "late")
end = time.process_time() + float(sys.argv[1])
n = 0
while time.process_time() < end:
    n += 1
json.dump({"pid": os.getpid(), "cpu_s": time.process_time()}, open(sys.argv[2], "w"))
'''


def test_label_past_the_string_cache_frees_nothing(tmp_path):
    script, out, truth = tmp_path / "many.py", tmp_path / "many.pb.gz", tmp_path / "t.json"
    script.write_text(MANY_STRINGS)
    rc, err = record(out, [APP_PYTHON, script, SECONDS, truth], env_with())
    assert rc == 0, err
    assert "tag values unreadable" in err, err
    t = json.loads(truth.read_text())
    samples = samples_of(decode_pprof(str(out)), t["pid"])
    tagged = [s for s in samples if "z" in s.labels or "a" in s.labels]
    # The burn loop runs SECONDS of CPU with both tags set: most samples.
    assert sum(s.values[0] for s in tagged) >= 0.5 * sum(s.values[0] for s in samples) > 0
    for s in tagged:
        assert s.labels.get("a") == "early", s.labels
        assert "z" not in s.labels, s.labels
