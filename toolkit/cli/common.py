"""What every command does first: typer apps and the options several commands share, and opening the project."""

from __future__ import annotations

from typing import Optional

import typer

from toolkit.cli.console import note


def app(help: str, group: bool = True) -> typer.Typer:
    """A console script's app; a `group` takes a command name even with one command (`kpull outputs`)."""
    made = typer.Typer(help=help, no_args_is_help=group, pretty_exceptions_enable=False, add_completion=False)
    if group:
        made.callback()(lambda: None)
    return made


# Options several commands take, defined once.
BackendOpt = typer.Option(None, "--backend", "-b", help="local (default), kaggle or ray.")
CompetitionOpt = typer.Option(None, "--competition", "-c", help="Competition slug (default from toolkit.toml).")
AcceleratorOpt = typer.Option(None, "--accelerator", help="Kaggle machine_shape (default NvidiaTeslaT4 = T4 x2).")
PublicOpt = typer.Option(None, "--public/--private", help="Kernel visibility (default private).")
InternetOpt = typer.Option(None, "--internet/--no-internet", help="Internet in training kernels (default on).")
PackOpt = typer.Option(1, "--pack", help="Runs trained together in one kernel, one per GPU (2 fits Kaggle's T4 x2).")
WaitOpt = typer.Option(False, "--wait", help="Wait until the pushed kernels finish (pushing runs that wait for a slot).")
TemplateOpt = typer.Option(None, "--template", "-t", help="Your template: templates/NAME.py.j2 or templates/NAME.ipynb (default: the shipped one).")
CheckOpt = typer.Option(False, "--check", help="First run each kernel on a miniature of the competition (one epoch, this machine) and check its outputs; push nothing if one fails.")


def open_project(backend: Optional[str] = None, public: Optional[bool] = None, ready: bool = True,
                 offline: bool = False, **flags):
    """The project from flags > environment > toolkit.toml; `ready`: its run registry open, and rebuilt from
    the backend if it was lost; `offline`: the backend is never contacted (the registry is opened, and a lost
    one is only reported)."""
    from toolkit.core.config import load_config
    from toolkit.project import Project

    private = None if public is None else not public
    project = Project(load_config(backend=backend, private=private, **flags), offline=offline)
    if ready:
        from toolkit.runs.rebuild import ensure
        ensure(project, note, may_rebuild=not offline)
    return project
