"""The public surface is exactly `__all__` (as httpx's test_exported_members does)."""

from types import ModuleType

import magicoder_data


def test_all_lists_every_public_name_and_only_those():
    for name in magicoder_data.__all__:  # each resolves (they are imported on first use)
        assert getattr(magicoder_data, name) is not None, name
    public = {
        name
        for name, value in vars(magicoder_data).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert sorted(public | {"__version__"}) == sorted(magicoder_data.__all__)
    assert dir(magicoder_data) == sorted(magicoder_data.__all__)


def test_every_stage_is_on_the_contract():
    names = [stage.name for stage in magicoder_data.STAGES]
    assert names == [
        "sample",
        "generate",
        "clean",
        "verify",
        "decontaminate",
        "lintseq",
        "export",
        "push",
    ]
    for stage in magicoder_data.STAGES:
        assert isinstance(stage, magicoder_data.Stage)
        assert stage.Config.model_config.get("extra") == "forbid", stage.name
        assert set(stage.requires) <= set(names[: names.index(stage.name)]), stage.name


def test_the_backend_choices_are_the_registered_backends():
    from typing import get_args

    from magicoder_data.backends import BACKENDS

    choices = get_args(magicoder_data.GenerateOptions.model_fields["backend"].annotation)
    assert choices == ("auto", *BACKENDS)


def test_the_wheel_ships_every_subpackage():
    from pathlib import Path

    import tomllib

    root = Path(magicoder_data.__file__).parent
    listed = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        ".".join(("magicoder_data", *init.parent.relative_to(root).parts))
        for init in root.rglob("__init__.py")
    }
    assert folders | {"magicoder_data.prompt_templates"} == set(listed["packages"])
