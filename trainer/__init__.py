"""The CORE trainer: exported logs -> liked chains -> RecBole CORE -> top-100 lists -> Redis.

`python -m trainer --help` lists the steps; docs/trainer.md describes them.
"""
