"""Botify: the recommender service (Flask + flask-restful on gunicorn, Redis, A/B arms)."""
