"""The password hasher of the test run: Django's PBKDF2 at one iteration. Its hashes
read "pbkdf2_sha256$1$...", which the default hasher of any process verifies (the
iterations are written in the hash), so a server or worker a test starts logs the
same users in; the default's million iterations cost a third of a second a user
made, in a suite that makes one in every admin test."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneIterationPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
