"""The folder preprocess/ is installed as the import package `xlm_preprocess` (a generic top-level name such as
`preprocess` collides with other distributions and scripts); everything else is in setup.cfg."""

from setuptools import find_packages, setup

preprocess_packages = ["xlm_preprocess" + name[len("preprocess") :] for name in find_packages(include=["preprocess*"])]

setup(
    packages=find_packages(include=["xlm_fairseq", "xlm_fairseq.*"]) + preprocess_packages,
    package_dir={"xlm_preprocess": "preprocess"},
)
