#!/usr/bin/env python3
"""tests/readme/walk.py - a new user's walk through README.md, as a test.

Runs the README's "Quick demo" commands, as written, against a real agent
started the way `make run` starts it (configs/flightrec.yaml, from a
fresh working directory), and the `ingest -` example below it, and checks
every answer the README shows (`# -> ...` lines and the example output).
When the README and the behaviour drift apart, this fails and names the
command.

Only what cannot run in a test is changed: the port (the agent binds a free
one, the commands are pointed at it), `./build/` (the binaries of this
build), `| less` (`| cat`), /tmp paths (the test's own folder) and the
generated event count (100000 -> 5000, to keep the test short).

usage: walk.py --bin FLIGHTREC --gen FR_GEN --source SOURCE_DIR
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def fail(msg):
    print("README walk: FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def demo_blocks(readme):
    """The ```sh block of "## Quick demo" and the example output block after it."""
    text = open(readme, encoding="utf-8").read()
    at = text.index("## Quick demo")
    sh = re.search(r"```sh\n(.*?)```", text[at:], re.S).group(1)
    rest = text[at:]
    ex = re.search(r"```\n(\$ .*?)```", rest, re.S).group(1)
    return sh, ex


def commands(block):
    """(command, expected answer or None) in order; a line ending in | continues."""
    out, cur = [], ""
    lines = block.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        if s.startswith("# ->"):
            if out:
                out[-1] = (out[-1][0], s[4:].strip())
            continue
        if s.startswith("#"):
            continue
        s = re.sub(r"\s+#.*$", "", s) if not s.endswith("|") else s
        cur = cur + " " + s if cur else s
        if cur.endswith("|"):
            continue
        out.append((cur, None))
        cur = ""
    return out


def adapt(cmd, port, bin_, gen, tmp):
    # the README's /tmp paths first: the binaries may live under /tmp themselves
    cmd = re.sub(r"(?<![\w/])/tmp/", tmp + "/", cmd)
    cmd = cmd.replace("127.0.0.1:8787", "127.0.0.1:%d" % port)
    cmd = cmd.replace("./build/flightrec", bin_).replace("./build/fr-gen", gen)
    cmd = cmd.replace("| less", "| cat").replace("--events 100000", "--events 5000")
    return cmd


def check_answer(cmd, got, want):
    """A `# -> {json} ...` line: every field it shows must be the answer's ("..." ends a
    string the README shortens)."""
    m = re.match(r"(\{.*\})(\s|$)", want)
    if not m:
        return
    try:
        shown = json.loads(m.group(1))
    except ValueError:
        fail("README: %s: the answer shown is not JSON: %s" % (cmd, m.group(1)))
    try:
        answer = json.loads(got.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fail("%s: the answer is not JSON: %r" % (cmd, got[:300]))

    def same(a, b):
        if isinstance(a, str) and a.endswith("..."):
            return isinstance(b, str) and b.startswith(a[:-3].rstrip())
        if isinstance(a, dict):
            return isinstance(b, dict) and all(same(v, b.get(k)) for k, v in a.items())
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
        return a == b

    if not same(shown, answer):
        fail("%s: README shows %s, the agent answered %s" % (cmd, m.group(1), got.strip()[:400]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()
    sh, example = demo_blocks(os.path.join(a.source, "README.md"))
    tmp = tempfile.mkdtemp(prefix="fr-readme-")
    agent = None
    try:
        os.symlink(os.path.join(a.source, "configs"), os.path.join(tmp, "configs"))
        os.mkdir(os.path.join(tmp, "var"), 0o700)
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("FLIGHTREC_"):
                del env[k]
        # the keys folder (~/.config/flightrec/keys) in the test's own folder, not the user's
        env["XDG_CONFIG_HOME"] = os.path.join(tmp, "xdg")
        # what `make run` does, on free ports (the README's 8787 may be taken)
        env["FLIGHTREC_HTTP_LISTEN"] = "127.0.0.1:0"
        env["FLIGHTREC_OTLP_LISTEN"] = "127.0.0.1:0"
        env["FLIGHTREC_OTLP_GRPC_LISTEN"] = "127.0.0.1:0"
        log = open(os.path.join(tmp, "agent.log"), "w+")
        agent = subprocess.Popen([a.bin, "agent", "--config", "configs/flightrec.yaml"],
                                 cwd=tmp, env=env, stdout=log, stderr=log)
        port = None
        for _ in range(3000):
            log.seek(0)
            m = re.search(r" http http://127\.0\.0\.1:(\d+)", log.read())
            if m:
                port = int(m.group(1))
                break
            if agent.poll() is not None:
                break
            time.sleep(0.01)
        if port is None:
            log.seek(0)
            fail("the agent did not start as `make run` starts it:\n" + log.read())
        for cmd, want in commands(sh):
            run = adapt(cmd, port, a.bin, a.gen, tmp)
            p = subprocess.run(["bash", "-o", "pipefail", "-c", run], cwd=tmp, env=env,
                               capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                fail("%s: exit %d: %s%s" % (cmd, p.returncode, p.stdout[-500:], p.stderr[-500:]))
            if want:
                check_answer(cmd, p.stdout, want)
            print("ok: " + cmd)
        # the `ingest -` example and its output, line by line (times and rates vary)
        lines = example.strip().splitlines()
        cmd = lines[0][2:].replace("flightrec ingest -", a.bin + " ingest --db " + tmp +
                                   "/example.db -")
        p = subprocess.run(["bash", "-c", cmd], cwd=tmp, env=env, capture_output=True, text=True)
        got = (p.stdout + p.stderr).splitlines()
        got = [g for g in got if "created key file" not in g]
        for want in lines[1:]:
            pattern = re.escape(want)
            pattern = re.sub(r"\\ \d+\\\.\d+\\ s", r" [0-9.]+ s", pattern)
            pattern = re.sub(r"\d+\\ events/s", r"[0-9]+ events/s", pattern)
            if not any(re.fullmatch(pattern, g) for g in got):
                fail("ingest - example: README shows %r, the command printed %r" % (want, got))
        print("ok: the ingest - example")
    finally:
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            if agent.wait(timeout=60) != 0:
                fail("the agent did not stop cleanly")
        shutil.rmtree(tmp, ignore_errors=True)
    print("README walk: every command and answer as documented")


if __name__ == "__main__":
    main()
