"""Questions that are asked in a terminal and answered by flags everywhere else.

``init`` runs the same steps whether a person types the answers or CI passes them as flags: each question names
its flag, checks the answer at once, and in a terminal asks again when it is wrong (saying why). Without a
terminal nothing is asked: a missing or wrong flag ends the command with one line naming the flag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

Check = Callable[[str], str | None]  # the answer's problem, or None when it will do


class InitError(click.ClickException):
    """An answer init cannot go on with (exit 2, one line)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"synapse-dagster init: {self.message}", err=True)


@dataclass(frozen=True)
class Question:
    flag: str  # "--source": what answers it without a terminal
    message: str
    check: Check = field(default=lambda answer: None)
    default: str | None = None  # taken without a terminal when the flag is not given
    hint: str = ""  # printed under the question in a terminal



@dataclass
class Prompter:
    interactive: bool
    echo: Callable[[str], None] = click.echo

    def text(self, question: Question, given: str | None) -> str:
        """The flag's value if it passes the check; else (in a terminal) asked until an answer passes."""
        if given is not None:
            problem = question.check(given)
            if problem is None:
                return given
            if not self.interactive:
                raise InitError(f"{question.flag} {given!r}: {problem}")
            self.echo(f"  ✗ {problem} — try again")
        if not self.interactive:
            return self._default(question)
        import questionary

        if question.hint:
            self.echo(f"  {question.hint}")
        while True:
            answer = questionary.text(question.message, default=question.default or "").unsafe_ask().strip()
            problem = question.check(answer)
            if problem is None:
                return answer
            self.echo(f"  ✗ {problem} — try again")

    def _default(self, question: Question) -> str:
        if question.default is None:
            raise InitError(f"{question.flag} is needed (stdin is not a terminal, so init asks nothing; "
                            "'synapse-dagster init --help' lists every flag)")
        problem = question.check(question.default)
        if problem is not None:
            raise InitError(f"{question.flag}: the default {question.default!r} will not do ({problem}); pass the flag")
        return question.default

    def choose(self, message: str, choices: Sequence[tuple[str, Any]], default: Any = None) -> Any:
        """One of ``choices`` (title, value); typing filters the list. Without a terminal: ``default``."""
        if not self.interactive:
            return default
        import questionary

        options = [questionary.Choice(title, value) for title, value in choices]
        initial = next((o for o in options if o.value == default), None)
        return questionary.select(message, choices=options, default=initial, use_search_filter=True,
                                  use_jk_keys=False, instruction="(type to filter, arrows to move, Enter to pick)"
                                  ).unsafe_ask()

    def confirm(self, message: str, default: bool = True) -> bool:
        """Yes or no; without a terminal the default stands."""
        if not self.interactive:
            return default
        import questionary

        return bool(questionary.confirm(message, default=default).unsafe_ask())
