"""Prints the path of the executable named sys.argv[1] from cargo's JSON messages on stdin
(`cargo build|test|rustc --message-format=json...`): the artifact cargo built, wherever it keeps
it (a test binary's hashed name, a binary linked with other flags)."""
import json
import sys

name = sys.argv[1]
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["target"]["name"] == name:
        print(message["executable"])
