# repo2docker config for builds bindery runs. Only the Local and Git content providers: the
# others (Zenodo, Dataverse, ...) probe the internet first, and bindery resolves those itself.
from repo2docker import contentproviders

c.Repo2Docker.content_providers = [  # noqa: F821 (c is injected by traitlets)
    contentproviders.Local,
    contentproviders.Git,
]

# A fixed Docker API version (the one bindery's own client uses: bindery/builds/executors/engine.py), so
# repo2docker does not ask the engine for it: podman answers /version by running its OCI runtime
# and conmon (0.3-1 s), and repo2docker asks twice per build (to build, then to push).
c.DockerEngine.extra_init_args = {"version": "1.41"}  # noqa: F821

# Which buildpacks build repositories without a Dockerfile (standard or mirror), from the
# BINDERY_BUILD_* variables bindery sets for this run: see bindery/builds/buildpacks/.
import os  # noqa: E402

from bindery.builds.buildpacks import configure  # noqa: E402

configure(c, os.environ)  # noqa: F821
