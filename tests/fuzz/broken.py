"""The real app with one endpoint deliberately broken (BOTIFY_BROKEN), for test_broken.py: what
the fuzzer must catch. gunicorn serves it as `tests.fuzz.broken:create_app()`.

- server_error: /next fails with a 500 when the whole track was heard (time 1.0): an off-by-one
  in a histogram of ten buckets, `buckets[int(time * 10)]`;
- schema: /last answers the user id as a string (a body that breaks the document);
- lost_line: a batch's last served step is not written to the log (an off-by-one in a loop).
"""

from __future__ import annotations

import functools
import os

from flask import Flask, Response, json, request

from botify.app import create_app as create_real_app

KINDS = ("server_error", "schema", "lost_line")


def create_app() -> Flask:
    app = create_real_app()
    kind = os.environ["BOTIFY_BROKEN"]
    service = app.extensions["botify"]
    if kind == "server_error":
        view = app.view_functions["nexttrack"]

        @functools.wraps(view)
        def next_track(**kwargs):
            body = request.get_json(silent=True)
            if isinstance(body, dict) and isinstance(body.get("time"), int | float):
                buckets = [0] * 10
                buckets[int(body["time"] * 10)] += 1  # IndexError at time 1.0
            return view(**kwargs)

        app.view_functions["nexttrack"] = next_track
    elif kind == "schema":
        view = app.view_functions["lasttrack"]

        @functools.wraps(view)
        def last_track(**kwargs):
            answer = view(**kwargs)
            if answer.status_code != 200:
                return answer
            body = json.loads(answer.get_data())
            return Response(json.dumps({"user": str(body["user"])}), mimetype="application/json")

        app.view_functions["lasttrack"] = last_track
    elif kind == "lost_line":
        write = service.events.write

        def write_all_but_the_last(events):
            events = list(events)
            write(events[:-1] if len(events) > 1 else events)

        service.events.write = write_all_but_the_last
    else:
        raise ValueError(f"BOTIFY_BROKEN must be one of {KINDS}")
    return app
