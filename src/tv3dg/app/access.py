"""Who may use the app: the `--auth USER:PASSWORD` / `--auth-file` accounts handed to Gradio's own
sign-in, and the start-up warning for a server that anyone on the network can reach."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tv3dg.errors import UserError

LOCAL_NAMES = {"localhost", "localhost.localdomain"}


def parse_account(text: str, where: str) -> tuple[str, str]:
    """`user:password` -> (user, password); the password may itself hold ':'. `where` names the
    source in the error (the flag, or the file and line), which never repeats the password."""
    user, colon, password = text.partition(":")
    if not colon or not user.strip() or not password:
        raise UserError(f"{where}: expected USER:PASSWORD with a non-empty user and password")
    return user.strip(), password


def read_accounts(flags: list[str], auth_file: Path | None) -> list[tuple[str, str]]:
    """Every account from `--auth` flags and the `--auth-file` (one `user:password` a line; blank
    lines and lines starting with `#` are skipped). A user named twice is an error."""
    accounts = [parse_account(text, "--auth") for text in flags]
    if auth_file is not None:
        try:
            lines = auth_file.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise UserError(f"--auth-file {auth_file}: cannot read it ({err.strerror}); give a readable file") from None
        accounts += [parse_account(line.strip(), f"--auth-file {auth_file} line {number}")
                     for number, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
        if not accounts:
            raise UserError(f"--auth-file {auth_file} holds no account; add lines of user:password")
    users = [user for user, _ in accounts]
    twice = sorted({user for user in users if users.count(user) > 1})
    if twice:
        raise UserError(f"user {twice[0]!r} is given more than once in --auth/--auth-file; keep one password per user")
    return accounts


def is_local(host: str) -> bool:
    """True for an address only this machine can reach (loopback)."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_server_warning(host: str, accounts: list[tuple[str, str]]) -> str | None:
    """The start-up warning for a server bound beyond this machine with no sign-in, else None."""
    if accounts or is_local(host):
        return None
    return (f"--host {host} without --auth: anyone who can reach this address can run generations and see "
            "every run; add --auth USER:PASSWORD or --auth-file FILE")
