# The grader in a container, with what student submissions need: Python 3, a JDK (headless), a C
# compiler and make. For students on macOS and Windows (the grader runs on Linux only) and for
# autograding services that take an image.
#
#   docker build -t classchat-grader .
#   docker run --rm -v "$PWD":/work classchat-grader run --task 1 /work
#
# The image's working folder is /work, so reports land in the mounted folder (`reports/`).
# Isolation: a plain `docker run` grades in host isolation as the unprivileged user `grader`
# (docker/entrypoint.sh says so); with
#   --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --security-opt apparmor=unconfined
# (or --privileged) the grader runs as root with a network namespace per scenario and the minimal
# root for every student process. docs/students.md, "Getting the grader", has the details.
#
# The same layout without Docker: scripts/container-layout.sh (run by the test suite).

# --- build: a static binary with the release profile for artifacts -----------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY grader grader
COPY reference reference
COPY tasks tasks
RUN cargo build --locked --profile dist -p grader \
    && install -m 0755 target/dist/grader /usr/local/bin/grader

# --- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
ENV LANG=C.UTF-8
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 default-jdk-headless gcc libc6-dev make tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin grader \
    && install -d -o grader -g grader /work
COPY --from=build /usr/local/bin/grader /usr/local/bin/grader
COPY docker/entrypoint.sh /usr/local/bin/grader-entrypoint
WORKDIR /work
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/grader-entrypoint"]
CMD ["--help"]
