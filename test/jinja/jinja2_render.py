#!/usr/bin/env python3
"""Render templates with the real Jinja2, configured as Salt configures it (salt/utils/templates.py:
StrictUndefined, the do and loopcontrols extensions, keep_trailing_newline) plus Salt's tojson.
Reads [{"template": str, "context": obj, "files": {name: text}}] as JSON on stdin, writes
[{"out": str} | {"error": "ExceptionType: message"}] as JSON on stdout."""
import json
import sys

import jinja2


def salt_tojson(val, indent=None, **options):
    # salt.utils.jinja.tojson: ensure_ascii, no key sorting, Jinja's HTML-safe escapes
    options.setdefault("ensure_ascii", True)
    if indent is not None:
        options["indent"] = indent
    return (
        json.dumps(val, **options)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
    )


def render(case):
    env = jinja2.Environment(
        loader=jinja2.DictLoader(case.get("files") or {}),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["tojson"] = salt_tojson
    try:
        return {"out": env.from_string(case["template"]).render(**(case.get("context") or {}))}
    except Exception as e:  # noqa: BLE001 - every failure is a result to compare
        return {"error": "%s: %s" % (type(e).__name__, e)}


def main():
    cases = json.load(sys.stdin)
    json.dump([render(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
