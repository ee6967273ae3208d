#!/usr/bin/env python3
"""Evaluate an OPA admission policy with regopy (Microsoft's rego-cpp; no opa binary needed).

  eval.py POLICY.rego [QUERY] < input.json

prints the result of QUERY (default: the messages of data.kubernetes.admission.deny) as JSON: a
sorted list of deny messages. `deny[msg] { ... }` (the old syntax the seed uses) is a partial set;
the comprehension below collects its members whatever representation the engine picks.
"""
import json
import sys

import regopy

DEFAULT_QUERY = "msgs := [m | data.kubernetes.admission.deny[m]]"


def main():
    policy_path = sys.argv[1]
    query = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_QUERY
    with open(policy_path) as f:
        policy = f.read()
    rego = regopy.Interpreter()
    rego.add_module(policy_path, policy)
    rego.set_input_term(json.dumps(json.load(sys.stdin)))
    out = rego.query(query)
    if not out.ok():
        print("rego error: %s" % out, file=sys.stderr)
        return 2
    msgs = json.loads(out.binding("msgs").json())
    json.dump(sorted(msgs), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
