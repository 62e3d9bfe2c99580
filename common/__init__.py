"""The toolkit every app uses and that imports no app: money, periods and the
proration fraction, errors, what a column can store, written-out SQL, webhook
target checks, admin form helpers."""
