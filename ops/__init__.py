"""Botify's operations: what runs the service (the local stack, its Redis, gunicorn's settings and
worker, the keeper and its deploy journal, the container's name lookup). It imports the service
package `botify`; the service never imports it."""
