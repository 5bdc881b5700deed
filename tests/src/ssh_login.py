"""One SSH login with paramiko, driven by the Herarx tests (tests/src/sshd.rs).

Reads a JSON request on stdin:
  {"port": N, "user": "...", "host_key": "<base64 of the pinned host key>",
   "key": "/path/to/ed25519 private key" or null, "password": "...",
   "codes": ["123456", ...], "keyboard_interactive": true}
answers each keyboard-interactive prompt by its text ("Password:" with the password, a
"Verification code" prompt with the next code in order, anything else with ""), and prints one
JSON report on stdout: the rounds the server sent (name, instructions, prompts), whether the
login succeeded, the error, and the output of `id -un` run in the session.
"""
import json
import sys

import paramiko

req = json.load(sys.stdin)
report = {
    "authenticated": False,
    "publickey_remaining": None,
    "rounds": [],
    "error": None,
    "stdout": None,
    "exit_status": None,
}
codes = list(req.get("codes", []))


def handler(name, instructions, prompts):
    report["rounds"].append(
        {"name": name, "instructions": instructions, "prompts": [p for p, _ in prompts]}
    )
    out = []
    for text, _echo in prompts:
        if "assword" in text:
            out.append(req.get("password") or "")
        elif "erification code" in text and codes:
            out.append(codes.pop(0))
        else:
            out.append("")
    return out


transport = paramiko.Transport(("127.0.0.1", req["port"]))
try:
    transport.start_client(timeout=10)
    got = transport.get_remote_server_key().get_base64()
    if got != req["host_key"]:
        raise SystemExit("host key mismatch: " + got)
    try:
        if req.get("key"):
            key = paramiko.Ed25519Key.from_private_key_file(req["key"])
            report["publickey_remaining"] = transport.auth_publickey(req["user"], key)
        if req.get("keyboard_interactive", True):
            transport.auth_interactive(req["user"], handler)
    except paramiko.SSHException as e:  # AuthenticationException and its kin
        report["error"] = "%s: %s" % (type(e).__name__, e)
    report["authenticated"] = transport.is_authenticated()
    if report["authenticated"]:
        chan = transport.open_session(timeout=10)
        chan.exec_command("id -un")
        report["stdout"] = chan.makefile().read().decode()
        report["exit_status"] = chan.recv_exit_status()
finally:
    transport.close()
json.dump(report, sys.stdout)
