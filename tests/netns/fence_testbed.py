#!/usr/bin/python3
"""The testbed's fence agent, speaking the fence-agents interface the way
src/coordinator/fencer.cc calls it: no arguments, options as key=value lines
on stdin (action, plug/port, nodename, then fencing.params, then the node's
fence map). The testbed's config passes `testbed=DIR` (its state dir).

  off      power-kill the plug's host like Testbed.kill(): eth0 down, every
           process in its namespace SIGKILLed; exit 0 once nothing of it runs
  on       boot the host (own address only, link up, its services started);
           nothing if it runs
  reboot   off, then on
  status   "Status: ON" exit 0, or "Status: OFF" exit 2 (the fence-agents
           convention: OFF is eth0 down with no process left)
  monitor  exit 0 (the testbed is there)
  list     the hosts, one "name," a line
  metadata the agent's XML description

Exit 1 on bad input (no testbed, unknown plug or action) or when the host
still has processes after SIGKILL.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import hostops  # noqa: E402

METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_testbed" shortdesc="Powers a Bulwark netns testbed host off">
<parameters>
<parameter name="plug" required="1"><content type="string"/></parameter>
<parameter name="testbed" required="1"><content type="string"/></parameter>
</parameters>
<actions><action name="off"/><action name="on"/><action name="reboot"/><action name="status"/>
<action name="monitor"/><action name="list"/><action name="metadata"/></actions>
</resource-agent>
"""

LINES_MAX = 1000


def fail(message):
    print(f"fence_testbed: {message}", file=sys.stderr)
    return 1


def read_options():
    opts = {}
    for i, line in enumerate(sys.stdin):
        if i >= LINES_MAX:
            break
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        opts[key.strip()] = value.strip()
    return opts


def main():
    opts = read_options()
    action = opts.get("action", "reboot")
    if action == "metadata":
        sys.stdout.write(METADATA)
        return 0
    directory = opts.get("testbed")
    if not directory:
        return fail("no testbed=DIR option (set fencing.params.testbed)")
    try:
        state = hostops.load_state(directory)
    except (OSError, ValueError) as e:
        return fail(f"cannot read the testbed state in {directory}: {e}")
    if action == "list":
        for node in state["nodes"]:
            print(f"{node},")
        return 0
    if action == "monitor":
        return 0
    node = opts.get("plug") or opts.get("port") or opts.get("nodename", "")
    if node not in state["nodes"]:
        return fail(f"no host '{node}' in testbed {state['tag']}")
    netns = state["netns"][node]
    if action == "status":
        off = not hostops.link_is_up(netns) and not hostops.netns_pids(netns)
        print(f"Status: {'OFF' if off else 'ON'}")
        return 2 if off else 0
    if action not in ("off", "on", "reboot"):
        return fail(f"unknown action '{action}'")
    if action in ("off", "reboot"):
        if hostops.power_off(netns) is None:
            return fail(f"{node} still has processes after SIGKILL: {hostops.netns_pids(netns)}")
        print(f"fence_testbed: {node} is off", file=sys.stderr)
    if action == "on" and hostops.netns_pids(netns):
        print(f"fence_testbed: {node} is on already", file=sys.stderr)
        return 0
    if action in ("on", "reboot"):
        hostops.prepare_boot(netns, state["addresses"][node], state["run_dirs"][node])
        env = hostops.service_env(state["tag"])
        hostops.boot_services(state, node,
                              lambda argv, log: hostops.spawn_detached(argv, log, env))
        print(f"fence_testbed: {node} is booting", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
