/// The Python half of the Alembic driver (see AlembicDriver). It ships inside migsnap and is
/// written 0600 into a private temporary directory for one run, so nothing is installed into the
/// project's environment. It runs in the project's own interpreter with the working directory and
/// environment Alembic would have, and does only what migsnap asks, one line at a time.
///
/// Protocol. migsnap writes commands to the driver's stdin; the driver answers on its stdout,
/// each answer one line starting with `migsnap-driver: ` (other lines there are not answers).
/// Before any project code runs, the driver moves both pipes to private descriptors and points
/// fd 0 at /dev/null and fd 1 at stderr, so Alembic's and the migrations' output streams to
/// stderr and can never be taken for an answer.
///
///     (on start)          → ready <alembic version>  |  failed: <error>
///     check               → ok <URL env.py connects to, without password>  |  failed: <error>
///     upgrade REV         → ok  |  failed: <Alembic's error>
///     downgrade REV       → ok  |  failed: <Alembic's error>
///     revisions           → ok <JSON: Alembic's revision map, in its load order>  |  failed: <error>
///
/// End of input (migsnap finished, or was killed) makes the driver exit at once, without running
/// anything further; on Linux the kernel also kills it when migsnap dies (PR_SET_PDEATHSIG), so a
/// step never outlives the store lock that migsnap held for it.
enum AlembicDriverSource {
    static let python = #"""
import os
import sys

_commands = os.fdopen(os.dup(0), "r", encoding="utf-8", errors="replace")
_answers = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
sys.stdout.flush()
os.dup2(2, 1)
try:
    sys.stdout.reconfigure(line_buffering=True)
except Exception:
    pass


def _die_with_parent():
    parent = os.environ.pop("MIGSNAP_DRIVER_PARENT", "")
    if not sys.platform.startswith("linux") or not parent:
        return
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != int(parent):  # migsnap died before prctl took effect
        os._exit(1)


_die_with_parent()
_debug = bool(os.environ.get("MIGSNAP_DRIVER_DEBUG"))


def _answer(text):
    try:
        _answers.write("migsnap-driver: " + text + "\n")
        _answers.flush()
    except Exception:
        os._exit(1)


def _one_line(error):
    text = ("%s: %s" % (type(error).__name__, error)).strip()
    return " ".join(text.split())


try:
    sys.path[0] = os.environ.pop("MIGSNAP_DRIVER_SYSPATH0", "") or os.getcwd()
    import alembic
    from alembic import command, util
    from alembic.config import CommandLine
    from sqlalchemy.engine import Engine
except BaseException as error:
    _answer("failed: " + _one_line(error))
    os._exit(1)

_options = sys.argv[1:]


def _config(*arguments):
    """The Config `alembic OPTIONS ARGUMENTS` would build, with the database migsnap snapshots."""

    class Capture(CommandLine):
        def run_cmd(self, config, options):
            self.config = config

    line = Capture(prog="alembic")
    line.main(argv=list(_options) + list(arguments))
    config = line.config
    url = os.environ.get("DATABASE_URL")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class _Seen(BaseException):
    """Raised where env.py would connect: the check needs the URL, not a connection."""

    def __init__(self, url):
        BaseException.__init__(self)
        self.url = url


def _without_password(url):
    """The URL without its password; a relative SQLite path made absolute."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        database = os.path.abspath(database)
    if hasattr(url, "set"):
        return url.set(password=None, database=database).render_as_string(hide_password=False)
    import copy  # SQLAlchemy < 1.4: URL objects are mutable

    url = copy.copy(url)
    url.password, url.database = None, database
    return str(url)


def _check():
    original = Engine.connect

    def connect(engine, *arguments, **keywords):
        raise _Seen(engine.url)

    Engine.connect = connect
    try:
        command.current(_config("current"))
    except _Seen as seen:
        return _without_password(seen.url)
    finally:
        Engine.connect = original
    raise RuntimeError("env.py did not connect to a database during `alembic current`")


def _revisions():
    """Alembic's own revision map, in its load order, with the labels each file declares."""
    import json
    from alembic.script import ScriptDirectory

    def listed(value):
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return list(value)

    directory = ScriptDirectory.from_config(_config("heads"))
    found = []
    for script in directory._load_revisions():
        labels = getattr(script, "_orig_branch_labels", None)
        found.append({
            "revision": script.revision,
            "down_revision": listed(script.down_revision),
            "branch_labels": listed(labels if labels is not None else script.branch_labels),
            "depends_on": listed(script.dependencies),
            "path": script.path,
            "doc": script.doc,
        })
    return json.dumps(found)


def _run(verb, revision):
    if _debug:
        sys.stderr.write("migsnap-driver: pid %d runs %s %s\n" % (os.getpid(), verb, revision))
        sys.stderr.flush()
    getattr(command, verb)(_config(verb, revision), revision)


if _debug:
    sys.stderr.write("migsnap-driver: pid %d started\n" % os.getpid())
    sys.stderr.flush()
_answer("ready " + getattr(alembic, "__version__", "?"))
while True:
    line = _commands.readline()
    if not line:
        os._exit(0)
    verb, _, argument = line.rstrip("\n").partition(" ")
    try:
        if verb == "check":
            _answer("ok " + _check())
        elif verb == "revisions":
            _answer("ok " + _revisions())
        elif verb in ("upgrade", "downgrade") and argument:
            _run(verb, argument)
            _answer("ok")
        else:
            _answer("failed: unknown command " + verb)
    except util.CommandError as error:
        sys.stderr.write("FAILED: %s\n" % error)
        _answer("failed: " + _one_line(error))
    except SystemExit as error:
        _answer("failed: Alembic exited with status %s" % error.code)
    except BaseException as error:
        import traceback
        traceback.print_exc()
        _answer("failed: " + _one_line(error))
    sys.stdout.flush()
    sys.stderr.flush()
"""#
}
