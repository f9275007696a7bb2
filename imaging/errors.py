"""Errors that carry a reason a person can act on; tasks turn them into SKU failures."""


class ImageRejected(ValueError):
    """A source image cannot be used (corrupt, too large, unsupported). The message is the reason."""


class WeightsMissing(FileNotFoundError):
    """A model's weight file is not in the model directory. The message says how to get it."""


class ModelInputError(ValueError):
    """A model was called with inputs it cannot take (wrong shape, dtype, range)."""
