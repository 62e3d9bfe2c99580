"""`manage.py runserver`: staticfiles' (which serves the static files with
--insecure), on the server of config.devserver, which reads a body sent chunked."""

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesCommand

from config.devserver import WSGIServer


class Command(StaticfilesCommand):
    server_cls = WSGIServer
