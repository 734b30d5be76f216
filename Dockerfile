# The devicedata app image: `devicedata api` (default), `devicedata bridge`, and the one-shot
# `init` of docker-compose.yml. See docs/deployment.md.
#
#   docker build -t devicedata .
#   docker build --build-arg EXTRAS=postgres -t devicedata .   # + PostgreSQL registry driver
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DEVICEDATA_DATA_DIR=/data \
    DEVICEDATA_HTTP_HOST=0.0.0.0 \
    DEVICEDATA_MOSQUITTO_DIR=/mosquitto/auth

# uid and gid 1883 are those of the `mosquitto` user in the eclipse-mosquitto image. The
# password file this user writes into the shared volume has mode 0600 (bridge/registry/broker_sync.py),
# and the broker can read it only if it runs as the same uid.
RUN groupadd --system --gid 1883 devicedata \
 && useradd --system --uid 1883 --gid devicedata --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin devicedata \
 && mkdir -p /data /mosquitto/auth \
 && chown devicedata:devicedata /data /mosquitto/auth

WORKDIR /app

# Dependencies first, in their own layer, so a source change does not reinstall them.
ARG EXTRAS=""
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in os.environ['EXTRAS'].split(',') if e]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The source tree (.dockerignore leaves out local state), installed as a regular package:
# the templates the code reads at run time are package data, so the copy in site-packages
# is complete. docker/app/ stays in /app for compose's init and healthcheck.
COPY . ./
RUN pip install --no-deps /app \
 && cd / && python -c "from devicedata.servers import MOSQUITTO_TEMPLATE as T; assert T.is_file(), T" \
 && devicedata --help > /dev/null

USER devicedata
EXPOSE 8888

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/app/docker/app/healthcheck.py", "api"]

CMD ["devicedata", "api"]
