# repo2docker config for builds bindery runs. Only the Local and Git content providers: the
# others (Zenodo, Dataverse, ...) probe the internet first, and bindery resolves those itself.
from repo2docker import contentproviders

c.Repo2Docker.content_providers = [  # noqa: F821 (c is injected by traitlets)
    contentproviders.Local,
    contentproviders.Git,
]
