"""Which integration tests may run beside each other (`make test` runs the suite in
two pytest-xdist workers, `-n 2 --dist loadgroup`).

Every test gets an xdist_group, so that a group runs whole on one worker:

  - HEAVY modules share the group "heavy": they load the machine (Django under
    gunicorn driven by wrk on every core, process churn) and compare CPU per
    request, shares or conservation against the kernel, or check a deploy's
    verdict. One worker runs them one after another, so none of them ever runs
    beside another of them; beside each, the other worker runs at most one test
    of the rest (README: the tests pass beside a CPU-bound process; the busiest
    of the rest, test_python's per-interpreter captures, run a dozen CPU-bound
    interpreters at once: the first candidate to move here if a heavy test
    ever fails beside them).
  - every other module is a group of its own, so its module-scoped fixtures
    (an agent, a capture, a browser) are set up once, on one worker.

ALONE tests run after the workers, one at a time, beside no other test (the
mark "alone": `make test` runs `-m "not alone"` in the workers, then `-m alone`).
They record the whole host (`record -a`) and time how soon a process that
starts during the capture is unwound or symbolized: every process another test
starts meanwhile queues work before theirs (in a parallel run, the first one
saw 253 of its 264 samples still waiting for their unwind tables).

test_bpf_programs is in "heavy" for another reason: its --counter-standin
captures attach on_switch, which test_counting's check that a default capture
attaches nothing at context switches reads host-wide (bpftool link show).

The heavy group is collected first, so that it starts at once on one worker
while the other works through the rest (xdist hands out groups in collection
order); without xdist the order is pytest's own.
"""
import os

HEAVY_GROUP = "heavy"

# Modules (file names without .py) in the heavy group.
HEAVY = frozenset((
    "test_agent",                # deploy checks on busy tagged apps, exact process CPU
    "test_bpf_programs",         # on_switch host-wide (see above)
    "test_canary",               # canary versus fleet under load, Prometheus rules
    "test_children",             # gunicorn workers
    "test_conservation",         # cgroup CPU conserved through process churn
    "test_counting",             # CPU per request against the app; host-wide on_switch
    "test_diff",                 # Django commits side by side, regression verdicts
    "test_diff_agent",           # the same through two agents
    "test_endpoint_from",        # Django and Flask under wrk
    "test_fleet",                # the fleet host: cgroup conservation, rolling deploy
    "test_tags",                 # Django under wrk, per-request tags
    "test_whole_request",        # CPU per request, five servers
    "test_whole_request_agent",  # the same through the agent
))

# Tests (module::name, parameters left out) that run alone.
ALONE = frozenset((
    "test_record::test_short_lived_process_is_symbolized",
    "test_unwind::test_new_process_first_samples_never_name_a_wrong_caller",
))


def module_of(item):
    return os.path.splitext(os.path.basename(str(item.fspath)))[0]


def is_alone(item):
    return "%s::%s" % (module_of(item), item.originalname) in ALONE


def group_of(item):
    """The xdist group of a collected test: "heavy" or its module's name."""
    module = module_of(item)
    return HEAVY_GROUP if module in HEAVY else module


def assign_groups(config, items):
    """Marks every item with its group (and "alone") and, under xdist, moves the
    heavy group first (a stable sort: modules stay whole and in order)."""
    import pytest
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item)))
        if is_alone(item):
            item.add_marker(pytest.mark.alone)
    if getattr(config.option, "dist", "no") != "no":
        items.sort(key=lambda item: group_of(item) != HEAVY_GROUP)
