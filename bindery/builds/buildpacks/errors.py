"""The one exception a buildpack raises for a repository it cannot build: a person's message."""


class BuildpackError(RuntimeError):
    """Raised while repo2docker picks or renders a buildpack; the message reaches the person as
    the build's ``failed`` event (repo2docker logs it as "Error during build: <message>"), so it
    says what is wrong and which file to change."""
