"""Price simulation: a draft version rated on a past period's real usage."""
