"""Print a Secret's keys and values from `kubectl get secret -o json` on stdin, password masked."""
import base64
import json
import re
import sys

data = json.load(sys.stdin).get("data", {})
for key in sorted(data):
    value = base64.b64decode(data[key]).decode("utf-8", "replace")
    if key == "password":
        value = "********"
    elif key == "uri":
        value = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:********@", value)
    print(f"  {key}: {value}")
