import ArgumentParser

extension Migsnap {
    struct HookCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hook",
            abstract: "Print an env.py snippet that snapshots before `alembic upgrade`, for teams that keep typing it.",
            discussion: """
            Paste the snippet into your migrations' env.py, after `config = context.config`. Then \
            every `alembic upgrade` takes one migsnap snapshot (tag alembic-hook) before it \
            migrates, and does not migrate if the snapshot fails. It is weaker than \
            `migsnap upgrade`: one snapshot per invocation, not per step, and no automatic restore \
            when a migration fails. Runs started by `migsnap upgrade` skip it (MIGSNAP_ACTIVE).
            """)

        static let snippet = """
        # --- migsnap: a snapshot before `alembic upgrade` migrates (printed by `migsnap hook`) ---
        import os as _os, subprocess as _subprocess
        _migsnap_cmd = getattr(getattr(context.config, "cmd_opts", None), "cmd", None)
        if (_migsnap_cmd and _migsnap_cmd[0].__name__ == "upgrade" and not context.is_offline_mode()
                and not _os.environ.get("MIGSNAP_ACTIVE")):
            _subprocess.run(["migsnap", "snapshot", "--tag", "alembic-hook",
                             "-c", context.config.config_file_name], check=True)
        # --- end migsnap ---
        """

        func run() throws {
            print(Self.snippet)
        }
    }
}
