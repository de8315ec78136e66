"""The ceiling: a hello-world Flask app, served by the same gunicorn settings as vault and
snappass. Nothing can be faster on this stack and this machine."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
