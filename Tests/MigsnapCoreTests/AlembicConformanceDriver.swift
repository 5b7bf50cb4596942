/// The Python side of AlembicConformanceTests: it answers the same planning questions with real
/// Alembic (ScriptDirectory, and real runs on an in-memory SQLite version table).
let alembicConformanceDriver = #"""
# Answers planning questions with real Alembic, for AlembicConformanceTests.
# Input (stdin): [{"dir": project dir, "queries": [{"state": [...], "kind": "upgrade"|"downgrade", "target": str}]}]
# Output (stdout): one JSON array, one object per project.
import json
import os
import sys
import warnings

warnings.simplefilter("ignore")

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

connection = create_engine("sqlite://").connect()
with connection.begin():
    connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))


def set_rows(rows):
    if connection.in_transaction():
        connection.rollback()
    with connection.begin():
        connection.execute(text("DELETE FROM alembic_version"))
        for row in rows:
            connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": row})


def current_heads():
    heads = list(MigrationContext.configure(connection).get_current_heads())
    connection.rollback()
    return heads


def run(steps):
    """Runs the steps on the real version table; returns [(revision, heads after)]."""
    record = []

    def on_apply(ctx, step, heads, run_args):
        record.append((step.up_revision_id, sorted(heads)))

    context = MigrationContext.configure(
        connection, opts={"fn": lambda rev, ctx: steps, "on_version_apply": [on_apply]}
    )
    if connection.in_transaction():
        connection.rollback()
    with connection.begin():
        context.run_migrations()
    return record


def describe(error):
    return "%s: %s" % (type(error).__name__, error)


def plan_and_run(answer, plan):
    """Alembic's planned steps, applied to the version table; None (and the error noted) if either fails."""
    try:
        steps = plan()
    except Exception as error:
        answer["error"] = describe(error)
        return None
    answer["planned"] = [step.revision.revision for step in steps]
    try:
        return run(steps)
    except Exception as error:
        # Alembic planned the steps but its version-table bookkeeping crashed while applying
        # them (seen with merges whose parents imply each other through depends_on).
        answer["run_error"] = describe(error)
        return None


def ask(script, query, states):
    key = tuple(query["state"])
    if key not in states:
        set_rows([])
        try:
            run(script._upgrade_revs(key, ()))
        except Exception as error:
            # Alembic itself cannot reach some states (e.g. a three-way merge where one parent
            # is implied by another through depends_on).
            states[key] = describe(error)
        else:
            states[key] = current_heads()
    if isinstance(states[key], str):
        return {"current": [], "state_error": states[key]}
    set_rows(states[key])
    current = current_heads()
    answer = {"current": current}
    target = query["target"]
    rmap = script.revision_map
    if query["kind"] == "upgrade":
        try:
            answer["resolved"] = sorted(r.revision for r in rmap._parse_upgrade_target(tuple(current), target, True))
        except Exception as error:
            answer["resolved_error"] = describe(error)
        record = plan_and_run(answer, lambda: script._upgrade_revs(target, tuple(current)))
        if record is None:
            return answer
        before = sorted(current)
        answer["steps"] = []
        for revision, after in record:
            answer["steps"].append({"from": before, "to": revision})
            before = after
        # migsnap runs `alembic upgrade <rev>` once per step: each must apply exactly that revision.
        set_rows(current)
        answer["stepwise"] = True
        try:
            for step in answer["steps"]:
                now = current_heads()
                planned = script._upgrade_revs(step["to"], tuple(now))
                if [s.revision.revision for s in planned] != [step["to"]] or sorted(now) != step["from"]:
                    answer["stepwise"] = False
                    break
                run(planned)
        except Exception:
            answer["stepwise"] = False
    else:
        try:
            label, revision = rmap._parse_downgrade_target(tuple(current), target, True)
            answer["resolved"] = [] if revision in (None, "base") else [revision.revision]
        except Exception as error:
            answer["resolved_error"] = describe(error)
        record = plan_and_run(answer, lambda: script._downgrade_revs(target, tuple(current)))
        if record is None:
            return answer
        answer["undone"] = [revision for revision, _ in record]
        answer["after"] = sorted(current_heads())
    return answer


def main():
    results = []
    for project in json.load(sys.stdin):
        config = Config(os.path.join(project["dir"], "alembic.ini"))
        try:
            script = ScriptDirectory.from_config(config)
            heads = list(script.get_heads())
            bases = list(script.get_bases())
        except Exception as error:
            results.append({"load_error": describe(error)})
            continue
        states = {}
        results.append(
            {"heads": heads, "bases": bases, "answers": [ask(script, q, states) for q in project["queries"]]}
        )
    json.dump(results, sys.stdout)


main()
"""#
